// Configuration from the environment, validated once at start. Every limit of
// the server is a field here, so tests and embedders can set any of them.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DIALECTS } from './upstream/dialect.js';

// An empty value (`PORT=`) is refused like any other bad one: coerced, it would be 0, which PORT reads as "any free port".
const numeric = (def: number, min: number, whole: boolean) => {
  const value = z.coerce.number<string | undefined>().min(min);
  return z
    .string()
    .refine((v) => v.trim() !== '', 'is empty (unset it for the default)')
    .optional()
    .pipe((whole ? value.int() : value).default(def));
};
const int = (def: number, min = 0) => numeric(def, min, true);
const decimal = (def: number) => numeric(def, 0, false);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

export const ConfigSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(8080).pipe(z.number().max(65535)),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  OPENAI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  UPSTREAM_DIALECT: z.enum(DIALECTS).default('chat'),
  ANTHROPIC_API_KEY: optionalString,
  ANTHROPIC_BASE_URL: optionalString.pipe(z.url().optional()),
  MODELS_FILE: optionalString,
  TOOLS_FILE: optionalString,
  MAX_TOOL_STEPS: int(8, 1),
  TOOL_RESULT_TIMEOUT_MS: int(120_000, 10),
  SYSTEM_PROMPT: z.string().default('You are a helpful assistant.'),
  MAX_FRAME_BYTES: int(65_536, 256),
  PING_INTERVAL_MS: int(15_000, 10),
  HELLO_TIMEOUT_MS: int(10_000, 10),
  UPSTREAM_IDLE_TIMEOUT_MS: int(30_000, 10),
  UPSTREAM_MAX_RETRIES: int(2),
  UPSTREAM_INCLUDE_USAGE: bool(true),
  UPSTREAM_MAX_EVENT_BYTES: int(1024 * 1024, 1024),
  UPSTREAM_MAX_IDLE_CONNECTIONS: int(1024, 1),
  REPLY_GRACE_MS: int(30_000),
  /** Who may cancel a reply: any member, or only who asked for it and the conversation's owner. */
  CANCEL_POLICY: z.enum(['any', 'asker-or-owner']).default('any'),
  /** After a conversation's first exchange, a short call to the model gives it a title (unless one was set). */
  AUTO_TITLE: bool(false),
  REPLY_MAX_MS: int(300_000, 10),
  SHUTDOWN_GRACE_MS: int(10_000),
  CONTEXT_TOKENS: int(8_000, 16),
  MAX_CONVERSATIONS: int(64, 1),
  MAX_ACTIVE_REPLIES: int(4, 1),
  MAX_QUEUED_REPLIES: int(4, 0),
  MAX_TEXT_CHARS: int(16_000, 1).pipe(z.number().max(32_000)),
  HISTORY_LIMIT: int(200, 1),
  EVENT_LOG_MAX: int(20_000, 16),
  EVENT_LOG_MAX_AGE_MS: int(15 * 60_000, 1_000),
  CONVERSATION_IDLE_MS: int(10 * 60_000, 10),
  PRESENCE_COALESCE_MS: int(50),
  TYPING_MIN_INTERVAL_MS: int(1_000),
  SEND_BUFFER_LIMIT_BYTES: int(4 * 1024 * 1024, 1024),
  SLOW_CONSUMER_HIGH_WATER_BYTES: int(256 * 1024, 1024),
  FRAME_RATE_PER_SEC: int(20, 1),
  FRAME_BURST: int(60, 1),
  FRAME_ABUSE_STRIKES: int(100, 1),
  REPLIES_PER_MINUTE: int(30, 1),
  TOKEN_QUOTA: int(200_000),
  TOKEN_QUOTA_WINDOW_MS: int(3_600_000, 1000),
  COST_QUOTA_USD: decimal(0),
  USAGE_RETENTION_DAYS: int(90, 1),
  USAGE_MAX_ENTRIES: int(200_000, 100),
  MAX_CONNECTIONS: int(10_000, 1),
  MAX_CONNECTIONS_PER_IP: int(50, 1),
  CONNECTIONS_PER_IP_PER_MINUTE: int(120, 1),
  TRUST_PROXY: bool(false),
  ALLOWED_MODELS: optionalString.transform((v) => (v === undefined ? [] : v.split(',').map((m) => m.trim()).filter(Boolean))),
  LOCAL_MODEL_TOKEN_DELAY_MS: int(25),
  MAX_ATTACHMENT_BYTES: int(10 * 1024 * 1024, 1024),
  /** Media types an upload may have (checked from its bytes); `image/*`-style wildcards are not taken. */
  ATTACHMENT_TYPES: z
    .string()
    .default('image/png,image/jpeg,image/webp,image/gif,application/pdf,text/plain')
    .transform((v) => v.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean)),
  ATTACHMENT_TTL_MS: int(7 * 24 * 3_600_000, 1_000),
  /** Bytes of attachments one user may hold at once, and the store in all. */
  ATTACHMENT_USER_QUOTA_BYTES: int(100 * 1024 * 1024, 1024),
  ATTACHMENT_STORE_BYTES: int(512 * 1024 * 1024, 1024),
  /** An OpenAI-compatible moderation API (`demo`: the built-in demo model's); unset, nothing is moderated. */
  MODERATION_BASE_URL: optionalString.pipe(z.union([z.literal('demo'), z.url()]).optional()),
  MODERATION_API_KEY: optionalString,
  MODERATION_MODEL: z.string().min(1).default('omni-moderation-latest'),
  MODERATION_MODE: z.enum(['optimistic', 'buffered']).default('optimistic'),
  MODERATION_WINDOW_TOKENS: int(200, 2),
  MODERATION_STEP_TOKENS: int(50, 1),
  MODERATION_FAIL_MODE: z.enum(['open', 'closed']).default('open'),
  MODERATION_TIMEOUT_MS: int(5_000, 10),
  /** Only these categories count (comma-separated); unset: any the API flags. */
  MODERATION_CATEGORIES: optionalString.transform((v) => (v === undefined ? undefined : v.split(',').map((c) => c.trim()).filter(Boolean))),
  /** A category score at or above this flags the text; unset: the API's own verdict per category. */
  MODERATION_THRESHOLD: optionalString.pipe(z.coerce.number<string | undefined>().min(0).max(1).optional()),
  /** Signs anonymous users' session tokens; every node of a cluster needs the same one (random per process when unset). */
  SESSION_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  // HS256 wants a key of at least 256 bits; a short secret can be brute-forced from one token.
  AUTH_JWT_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: optionalString,
  METRICS_TOKEN: optionalString,
  ADMIN_TOKEN: optionalString.pipe(z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional()),
  MAX_HTTP_BODY_BYTES: int(1024 * 1024, 1024),
  PAGE_SOURCE_MAPS: bool(false),
  MESSAGES_PER_MINUTE: int(60, 1),
  EVENT_LOG_MAX_BYTES: int(16 * 1024 * 1024, 64 * 1024),
  AUTH_JWT_PUBLIC_KEY: optionalString,
  ALLOWED_ORIGINS: optionalString.transform((v) =>
    v === undefined ? undefined : v.split(',').map((o) => o.trim()).filter(Boolean),
  ),
  ALLOW_ANONYMOUS: bool(false),
  REDIS_URL: optionalString,
  /** Where state lives without REDIS_URL: `sqlite` (durable, under DATA_DIR) or `memory` (gone with the process). */
  STORE: z.enum(['sqlite', 'memory']).default('sqlite'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATA_MAX_BYTES: int(1024 * 1024 * 1024, 1024 * 1024),
  DATA_RETENTION_DAYS: decimal(0),
  DATA_SWEEP_MS: int(60_000, 100),
  REDIS_PREFIX: z.string().min(1).max(64).default('relay:'),
  REDIS_LEASE_MS: int(5_000, 100),
  REDIS_RETENTION_MS: int(7 * 24 * 3_600_000, 1_000),
  READY_CHECK_UPSTREAM: bool(false),
  READY_UPSTREAM_FAILURES: int(3, 1),
  READY_UPSTREAM_RETRY_MS: int(30_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A JSON file a setting names (MODELS_FILE, TOOLS_FILE), checked against its schema; a ConfigError names what is wrong. */
export function loadJsonFile<T>(setting: string, path: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${setting} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ConfigError(`invalid configuration: ${setting} ${path}: ${issue?.path.join('.') || 'file'}: ${issue?.message ?? 'invalid'}`);
}

/** Parse an environment (process.env, or a test's overrides) into a Config. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(
      `invalid configuration: ${issue?.path.join('.') || 'environment'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return result.data;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Anonymous mode on a public address lets anyone spend the API key: refuse unless asked for loudly. */
export function checkExposure(config: Config): 'ok' | 'anonymous-exposed' {
  const anonymous = !config.AUTH_JWT_SECRET && !config.AUTH_JWT_PUBLIC_KEY;
  if (!anonymous || isLoopback(config.HOST)) return 'ok';
  if (!config.ALLOW_ANONYMOUS) {
    throw new ConfigError(
      `invalid configuration: HOST ${config.HOST} is not loopback and no AUTH_JWT_SECRET / AUTH_JWT_PUBLIC_KEY is set; ` +
        'set one, or ALLOW_ANONYMOUS=true to let anyone in',
    );
  }
  return 'anonymous-exposed';
}
