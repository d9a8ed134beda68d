// `npm run token`: a JWT for the configured AUTH_JWT_SECRET, run as a user runs
// it (a child process), checked with jose and with the server's own authenticator.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createAuthenticator } from '../../server/session/auth.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/token.ts', import.meta.url));
// Resolved here: the script runs in a scratch directory, where `--import tsx` would not be found.
const TSX = import.meta.resolve('tsx');
const SECRET = 'token-test-secret-token-test-secret-0123';

/** The script in an empty working directory (or one with `dotenv` as its .env), with only `env` set. */
function token(args: string[], env: Record<string, string> = {}, dotenv?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'relay-token-'));
  if (dotenv !== undefined) writeFileSync(join(cwd, '.env'), dotenv);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, SCRIPT, ...args], { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const key = new TextEncoder().encode(SECRET);

test('prints one HS256 token with sub, name, conversation patterns and exp, which the server accepts', async () => {
  const run = await token(['--sub', 'alice', '--name', 'Alice', '--conversations', 'team-*', '--conversations=lobby', '--ttl', '600'], { AUTH_JWT_SECRET: SECRET });
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stderr, '');
  assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'only the token on stdout');
  const jwt = run.stdout.trim();
  assert.is(decodeProtectedHeader(jwt).alg, 'HS256');
  const { payload } = await jwtVerify(jwt, key);
  assert.is(payload.sub, 'alice');
  assert.is(payload.name, 'Alice');
  assert.equal(payload.conversations, ['team-*', 'lobby']);
  assert.ok(Math.abs(payload.exp! - (Date.now() / 1000 + 600)) < 30, 'exp is --ttl from now');

  const identity = await createAuthenticator(SECRET, undefined).authenticate(jwt);
  assert.equal(identity.user, { id: 'alice', name: 'Alice' });
  assert.ok(identity.allows('team-blue') && identity.allows('lobby'));
  assert.not.ok(identity.allows('elsewhere'));
});

test('reads the secret, issuer and audience from .env like the server, and sets iss and aud', async () => {
  const run = await token(['--sub', 'bob'], {}, `AUTH_JWT_SECRET=${SECRET}\nAUTH_JWT_ISSUER=https://issuer.test\nAUTH_JWT_AUDIENCE=chat-relay\n`);
  assert.is(run.code, 0, run.stderr);
  const { payload } = await jwtVerify(run.stdout.trim(), key, { issuer: 'https://issuer.test', audience: 'chat-relay' });
  assert.is(payload.sub, 'bob');
  assert.is(payload.conversations, undefined, 'no patterns: every conversation');
  assert.ok(Math.abs(payload.exp! - (Date.now() / 1000 + 3600)) < 30, 'an hour by default');
});

test('without AUTH_JWT_SECRET: a clear message and exit 2, nothing on stdout', async () => {
  const run = await token(['--sub', 'alice']);
  assert.is(run.code, 2);
  assert.is(run.stdout, '');
  assert.match(run.stderr, /AUTH_JWT_SECRET is not set/);
  const short = await token(['--sub', 'alice'], { AUTH_JWT_SECRET: 'short' });
  assert.is(short.code, 2);
  assert.match(short.stderr, /at least 32 characters/);
});

test('bad arguments: exit 2 with the usage', async () => {
  for (const args of [[], ['--sub'], ['--sub', 'a', '--ttl', '0'], ['--sub', 'a', '--conversations', 'no spaces'], ['--user', 'a']]) {
    const run = await token(args, { AUTH_JWT_SECRET: SECRET });
    assert.is(run.code, 2, args.join(' '));
    assert.is(run.stdout, '');
    assert.match(run.stderr, /^token: /);
  }
});

test.run();
