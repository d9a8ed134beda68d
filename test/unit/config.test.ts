import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkExposure, ConfigError, ConfigSchema, parseConfig } from '../../server/config.js';

test('defaults are what the protocol and the README promise', () => {
  const c = parseConfig({});
  assert.is(c.HOST, '127.0.0.1');
  assert.is(c.PORT, 8080);
  assert.is(c.MAX_FRAME_BYTES, 65_536);
  assert.is(c.PING_INTERVAL_MS, 15_000);
  assert.is(c.REPLY_GRACE_MS, 30_000);
  assert.is(c.UPSTREAM_IDLE_TIMEOUT_MS, 30_000);
  assert.is(c.MAX_CONVERSATIONS, 64);
  assert.is(c.MAX_ACTIVE_REPLIES, 4);
  assert.is(c.PAGE_SOURCE_MAPS, false);
});

test('bad values are refused with the variable named', () => {
  for (const [key, value] of [['PORT', 'x'], ['PORT', '70000'], ['PORT', ''], ['PORT', ' '], ['REPLY_GRACE_MS', ''], ['MAX_FRAME_BYTES', '-1'], ['OPENAI_BASE_URL', 'not a url'], ['ALLOW_ANONYMOUS', 'maybe'], ['LOG_LEVEL', 'loud'], ['AUTH_JWT_SECRET', 'short'], ['PAGE_SOURCE_MAPS', 'maybe']]) {
    assert.throws(() => parseConfig({ [key!]: value }), (e: unknown) => e instanceof ConfigError && e.message.includes(key!), `${key}=${value}`);
  }
});

test('PORT=0 means any free port; an empty PORT is refused, not read as 0', () => {
  assert.is(parseConfig({ PORT: '0' }).PORT, 0);
  assert.throws(() => parseConfig({ PORT: '' }), (e: unknown) => e instanceof ConfigError && /PORT: is empty/.test(e.message));
});

test('anonymous mode on a public address needs ALLOW_ANONYMOUS', () => {
  assert.throws(() => checkExposure(parseConfig({ HOST: '0.0.0.0' })), (e: unknown) => e instanceof ConfigError);
  assert.is(checkExposure(parseConfig({ HOST: '0.0.0.0', ALLOW_ANONYMOUS: 'true' })), 'anonymous-exposed');
  assert.is(checkExposure(parseConfig({ HOST: '0.0.0.0', AUTH_JWT_SECRET: 's'.repeat(32) })), 'ok');
  assert.is(checkExposure(parseConfig({ HOST: '::1' })), 'ok');
});

test('every setting is documented in the README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const documented = new Set([...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
  const missing = Object.keys(ConfigSchema.shape).filter((k) => !documented.has(k));
  assert.equal(missing, []);
});

test.run();
