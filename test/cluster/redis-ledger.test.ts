// The Redis usage ledger read in pages by time: every entry once, in order,
// also when many share one millisecond and pages end in the middle of them.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keys } from '../../server/backend/redis/keys.js';
import { RedisLedger } from '../../server/backend/redis/ledger.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const available = await redisAvailable();
const it = available ? test : test.skip;

it('2,500 entries, ten per millisecond: each read once, oldest first', async () => {
  const redis = new Redis(REDIS_URL ?? '');
  const keys = new Keys(`ledger-${randomUUID()}:`);
  const base = Date.now() - 60_000;
  try {
    const entries = Array.from({ length: 2_500 }, (_, i) => ({
      replyId: `r${String(i).padStart(5, '0')}`,
      conversationId: 'c',
      userId: 'u',
      model: 'm',
      dialect: 'chat',
      promptTokens: 1,
      completionTokens: i,
      source: 'estimated' as const,
      finishReason: 'stop' as const,
      at: base + Math.floor(i / 10),
    }));
    await redis.zadd(keys.ledger, ...entries.flatMap((e) => [e.at, JSON.stringify(e)]));
    const ledger = new RedisLedger(redis, keys, { ledgerRetentionMs: 3_600_000 });
    const read: string[] = [];
    let pages = 0;
    await ledger.read({ from: 0, to: Date.now() }, (page) => {
      pages++;
      read.push(...page.map((e) => e.replyId));
    });
    assert.ok(pages >= 3, `${pages} pages`);
    assert.equal(read, entries.map((e) => e.replyId));
  } finally {
    await redis.del(keys.ledger);
    redis.disconnect();
  }
});

test.run();
