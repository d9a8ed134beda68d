// `npm run --silent token -- --sub alice [--name Alice] [--conversations 'team-*'] [--ttl 3600]`
// prints a JWT for trying auth: HS256, signed with the AUTH_JWT_SECRET the server
// would use (the environment, else .env in the working directory, as `npm start`
// reads them), with AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE when they are set. Only the
// token goes to stdout, so `TOKEN=$(npm run --silent token -- --sub alice)` works.
import { existsSync } from 'node:fs';
import { SignJWT } from 'jose';
import { ConfigSchema } from '../server/config.js';

const USAGE =
  "usage: npm run --silent token -- --sub USER_ID [--name 'Display Name'] [--conversations 'team-*,lobby'] [--ttl SECONDS]";
const MAX_TTL_S = 366 * 24 * 3600;

interface Args {
  sub: string;
  name: string | undefined;
  conversations: string[] | undefined;
  ttlS: number;
}

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const m = /^--(sub|name|conversations|ttl)(?:=(.*))?$/s.exec(arg);
    if (!m) fail(`unknown argument ${arg}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) fail(`--${m[1]} needs a value\n${USAGE}`);
    values.set(m[1]!, [...(values.get(m[1]!) ?? []), value]);
  }
  const one = (key: string) => values.get(key)?.at(-1);
  const sub = one('sub');
  if (!sub || sub.length > 128) fail(`--sub (the user id, 1-128 characters) is required\n${USAGE}`);
  const name = one('name');
  if (name !== undefined && (name.length < 1 || name.length > 128)) fail('--name must be 1-128 characters');
  // Repeated or comma-separated; `*` stands for any run of conversation-id characters.
  const conversations = values.get('conversations')?.flatMap((v) => v.split(',')).map((p) => p.trim()).filter(Boolean);
  for (const p of conversations ?? []) if (!/^[A-Za-z0-9._:*-]{1,128}$/.test(p)) fail(`--conversations: ${p} is not a conversation id or pattern (A-Z a-z 0-9 . _ : - and *)`);
  const ttlS = Number(one('ttl') ?? 3600);
  if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_TTL_S) fail(`--ttl must be a whole number of seconds, 1 to ${MAX_TTL_S}`);
  return { sub, name, conversations, ttlS };
}

const args = parseArgs(process.argv.slice(2));
if (existsSync('.env')) process.loadEnvFile('.env');
if (process.env.AUTH_JWT_PUBLIC_KEY?.trim() && !process.env.AUTH_JWT_SECRET?.trim()) {
  fail('the server checks tokens with AUTH_JWT_PUBLIC_KEY: sign them with the private key of your identity provider; this tool signs with AUTH_JWT_SECRET');
}
const secret = ConfigSchema.shape.AUTH_JWT_SECRET.safeParse(process.env.AUTH_JWT_SECRET);
if (!secret.success) fail(`AUTH_JWT_SECRET ${secret.error.issues[0]?.message ?? 'is invalid'}`);
if (!secret.data) fail('AUTH_JWT_SECRET is not set (in the environment or .env): there is nothing to sign the token with');

const jwt = new SignJWT({ ...(args.name ? { name: args.name } : {}), ...(args.conversations ? { conversations: args.conversations } : {}) })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(args.sub)
  .setIssuedAt()
  .setExpirationTime(`${args.ttlS}s`);
const issuer = process.env.AUTH_JWT_ISSUER?.trim();
const audience = process.env.AUTH_JWT_AUDIENCE?.trim();
if (issuer) jwt.setIssuer(issuer);
if (audience) jwt.setAudience(audience);
process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret.data))}\n`);
