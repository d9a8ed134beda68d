// The storage layout is versioned: a node refuses, with one clear message and
// exit code 2, to start on Redis data of a layout it does not know.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LAYOUT_VERSION } from '../../server/backend/redis/keys.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const MAIN = new URL('../../server/main.ts', import.meta.url).pathname;
const available = await redisAvailable();
// Without Redis the tests are registered as skipped: the closing line says so.
const it = available ? test : test.skip;

/** `npm start` on REDIS_PREFIX=prefix: its exit code (null while it runs) and what it printed, once it listens or exits. */
function start(prefix: string): Promise<{ code: number | null; output: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', REDIS_URL: REDIS_URL ?? '', REDIS_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('"listen"')) resolve({ code: null, output: out, stop: () => child.kill() });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => resolve({ code, output: out, stop: () => undefined }));
  });
}

let redis: Redis;
test.before(() => {
  if (available) redis = new Redis(REDIS_URL ?? '');
});
test.after(() => redis?.disconnect());

it('a fresh prefix is claimed for this layout; a second node of the same layout starts beside it', async () => {
  const prefix = `layout-${randomUUID()}:`;
  const first = await start(prefix);
  assert.is(first.code, null, first.output);
  assert.is(await redis.get(`${prefix}layout`), String(LAYOUT_VERSION));
  const second = await start(prefix);
  assert.is(second.code, null, second.output);
  first.stop();
  second.stop();
});

it('a layout this node does not know: exit 2 with a message naming both layouts', async () => {
  const prefix = `layout-${randomUUID()}:`;
  await redis.set(`${prefix}layout`, String(LAYOUT_VERSION + 1));
  const node = await start(prefix);
  assert.is(node.code, 2);
  assert.match(node.output, new RegExp(`holds storage layout ${LAYOUT_VERSION + 1}; this relay knows only layout ${LAYOUT_VERSION}`));
  await redis.del(`${prefix}layout`);
});

it('data of layout 1 (no version key, history without a byte counter): exit 2, and the prefix is left unclaimed', async () => {
  const prefix = `layout-${randomUUID()}:`;
  await redis.zadd(`${prefix}{c:old}:hist`, 1, '{"id":"m1"}');
  const node = await start(prefix);
  assert.is(node.code, 2);
  assert.match(node.output, /layout 1/);
  assert.is(await redis.get(`${prefix}layout`), null);
  await redis.del(`${prefix}{c:old}:hist`);
});

test.run();
