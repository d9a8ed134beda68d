// The model table: which model names a client may ask for, and where each one
// goes (dialect, base URL, key, the provider's name for it, its context
// budget, extra request fields, fallbacks, prices). From MODELS_FILE, or for
// one upstream from the environment shortcut (UPSTREAM_DIALECT, OPENAI_* /
// ANTHROPIC_*, OPENAI_MODEL, ALLOWED_MODELS). Validated once, at start.
import { z } from 'zod';
import { ConfigError, loadJsonFile, type Config } from '../config.js';
import { DIALECTS, type DialectName } from './dialect.js';
import { ATTACHMENT_KINDS, type AttachmentKind } from '../attachments/kinds.js';

/** Fallbacks one model may name: each is a full upstream call, so a reply never waits on more than this many. */
export const MAX_FALLBACKS = 3;

const Prices = z.strictObject({
  /** US dollars per million tokens. */
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cachedInput: z.number().nonnegative().optional(),
});

const RouteEntry = z.strictObject({
  dialect: z.enum(DIALECTS).default('chat'),
  baseURL: z.url().optional(),
  /** The name of the environment variable holding its key: keys stay out of the file. */
  apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  upstreamModel: z.string().min(1).optional(),
  contextTokens: z.number().int().min(16).optional(),
  /** Extra request fields, sent as they are (e.g. `reasoning`, `top_p`, `thinking`). */
  options: z.record(z.string(), z.unknown()).optional(),
  fallbacks: z.array(z.string()).max(MAX_FALLBACKS).default([]),
  prices: Prices.optional(),
  /** The kinds of attachment the model takes (all, unless it says): a send with another is refused. */
  attachments: z.array(z.enum(ATTACHMENT_KINDS)).optional(),
  /**
   * Responses only: run replies as background responses the provider stores,
   * so that another node re-attaches to one whose node was lost.
   */
  background: z.boolean().default(false),
});

const ModelsFile = z.strictObject({
  default: z.string().optional(),
  models: z.record(z.string().min(1).max(128), RouteEntry).refine((m) => Object.keys(m).length > 0, 'lists no model'),
});

export type Prices = z.infer<typeof Prices>;

export interface Route {
  /** The name clients use. */
  name: string;
  dialect: DialectName;
  baseURL: string | undefined;
  apiKey: string;
  upstreamModel: string;
  contextTokens: number | undefined;
  options: Record<string, unknown> | undefined;
  fallbacks: string[];
  prices: Prices | undefined;
  attachments: readonly AttachmentKind[];
  background: boolean;
}

export interface ModelTable {
  routes: Map<string, Route>;
  defaultModel: string;
  /** Any other name goes to this route with the name passed on (ALLOWED_MODELS=*). */
  passThrough: Route | undefined;
}

/** What overrides the environment's upstream (the built-in demo model, a test's upstream). */
export interface UpstreamOverride {
  baseURL?: string | undefined;
  apiKey?: string | undefined;
  model?: string | undefined;
}

export function loadModelTable(config: Config, env: Record<string, string | undefined>, override: UpstreamOverride = {}): ModelTable {
  if (!config.MODELS_FILE) return shortcutTable(config, override);
  if (config.ALLOWED_MODELS.length) {
    throw new ConfigError('invalid configuration: ALLOWED_MODELS is for the one-upstream shortcut; with MODELS_FILE, list every model in the file');
  }
  return fileTable(config.MODELS_FILE, env);
}

function fileTable(path: string, env: Record<string, string | undefined>): ModelTable {
  const file = loadJsonFile('MODELS_FILE', path, ModelsFile);
  const routes = new Map<string, Route>();
  for (const [name, entry] of Object.entries(file.models)) {
    const apiKey = entry.apiKeyEnv ? env[entry.apiKeyEnv] : undefined;
    if (entry.apiKeyEnv && !apiKey) throw new ConfigError(`invalid configuration: MODELS_FILE: model ${name} needs ${entry.apiKeyEnv}, which is not set`);
    routes.set(name, {
      name,
      dialect: entry.dialect,
      baseURL: entry.baseURL,
      // The SDKs insist on a key; a local server without auth ignores this one.
      apiKey: apiKey ?? 'none',
      upstreamModel: entry.upstreamModel ?? name,
      contextTokens: entry.contextTokens,
      options: entry.options,
      fallbacks: entry.fallbacks,
      prices: entry.prices,
      attachments: entry.attachments ?? ATTACHMENT_KINDS,
      background: entry.background,
    });
    if (entry.background && entry.dialect !== 'responses') {
      throw new ConfigError(`invalid configuration: MODELS_FILE: model ${name} asks for background replies, which only the responses dialect has`);
    }
  }
  for (const route of routes.values()) {
    for (const next of route.fallbacks) {
      if (next === route.name || !routes.has(next)) throw new ConfigError(`invalid configuration: MODELS_FILE: model ${route.name} falls back to ${next}, which is not another model in the file`);
    }
  }
  const defaultModel = file.default ?? routes.keys().next().value!;
  if (!routes.has(defaultModel)) throw new ConfigError(`invalid configuration: MODELS_FILE: the default model ${defaultModel} is not in the file`);
  return { routes, defaultModel, passThrough: undefined };
}

/** One upstream from the environment: OPENAI_MODEL plus each name of ALLOWED_MODELS, all on the same upstream. */
function shortcutTable(config: Config, override: UpstreamOverride): ModelTable {
  const anthropic = config.UPSTREAM_DIALECT === 'anthropic';
  const base = {
    dialect: config.UPSTREAM_DIALECT,
    baseURL: override.baseURL ?? (anthropic ? (config.ANTHROPIC_BASE_URL ?? config.OPENAI_BASE_URL) : config.OPENAI_BASE_URL),
    apiKey: override.apiKey ?? (anthropic ? (config.ANTHROPIC_API_KEY ?? config.OPENAI_API_KEY) : config.OPENAI_API_KEY) ?? 'none',
    contextTokens: undefined,
    options: undefined,
    fallbacks: [],
    prices: undefined,
    attachments: ATTACHMENT_KINDS,
    background: false,
  };
  const route = (name: string): Route => ({ ...base, name, upstreamModel: name });
  const defaultModel = override.model ?? config.OPENAI_MODEL;
  const names = [defaultModel, ...config.ALLOWED_MODELS.filter((m) => m !== '*')];
  return {
    routes: new Map(names.map((n) => [n, route(n)])),
    defaultModel,
    passThrough: config.ALLOWED_MODELS.includes('*') ? route(defaultModel) : undefined,
  };
}

/**
 * The host a route's calls go to, for logs and the start-up line: no scheme,
 * path or credentials. Without a base URL the SDKs read their environment
 * variable, then use the provider's own API.
 */
export function upstreamHost(route: Pick<Route, 'baseURL' | 'dialect'>, env: Record<string, string | undefined> = process.env): string {
  const anthropic = route.dialect === 'anthropic';
  const base = route.baseURL ?? (anthropic ? env.ANTHROPIC_BASE_URL : env.OPENAI_BASE_URL) ?? (anthropic ? 'https://api.anthropic.com' : 'https://api.openai.com/v1');
  try {
    return new URL(base).host;
  } catch {
    return 'unknown';
  }
}

/** The key the environment shortcut would use: without one, `npm start` answers from the built-in demo model. */
export function shortcutHasKey(config: Config): boolean {
  if (config.MODELS_FILE) return true;
  return Boolean(config.UPSTREAM_DIALECT === 'anthropic' ? (config.ANTHROPIC_API_KEY ?? config.OPENAI_API_KEY) : config.OPENAI_API_KEY);
}
