// REDIS_RETENTION_MS: every key of a conversation expires that long after its last write.
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack } from '../helpers.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const available = await redisAvailable();
// Without Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

it('after a send, each key of the conversation expires within REDIS_RETENTION_MS', async () => {
  const stack = await startStack({ env: { REDIS_RETENTION_MS: '5000' } });
  const redis = new Redis(REDIS_URL ?? '');
  try {
    const c = await stack.connect();
    c.send({ type: 'send', conversationId: 'kept', text: 'hello', clientMessageId: 'cm', reply: false });
    await c.next('message');
    const keys = (await redis.keys(`${stack.redisPrefix}{c:kept}:*`)).sort();
    const names = keys.map((k) => k.slice(k.lastIndexOf(':') + 1));
    assert.equal(names, ['bytes', 'epoch', 'hist', 'ids', 'idx', 'listed', 'log', 'members', 'seq', 'tree']);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= 5000, `${key}: PTTL ${ttl}`);
    }
  } finally {
    redis.disconnect();
    await stack.close();
  }
});

test.run();
