// A reply event written, whose answer was lost with the connection, is sent
// again by the client after it reconnects: the fence recognises it, nothing is
// written twice, and the reply goes on (it used to fail with an error).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../server/log.js';
import { Keys } from '../../server/backend/redis/keys.js';
import { RedisStore } from '../../server/backend/redis/store.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const available = await redisAvailable();
// Without Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

it('a reply event sent again after it was written: not written twice (nor billed twice), the reply ends whole', async () => {
  const redis = new Redis(REDIS_URL ?? '');
  const keys = new Keys(`log-${randomUUID()}:`);
  const limits = { historyLimit: 100, eventLogMax: 1000, eventLogMaxAgeMs: 60_000, eventLogMaxBytes: 1 << 20, maxQueuedReplies: 4, conversationIdleMs: 600_000, ledgerRetentionMs: 60_000, ledgerMaxEntries: 1_000 };
  const store = new RedisStore(redis, keys, { nodeId: 'n1', leaseMs: 60_000, retentionMs: 60_000, ...limits }, createLogger('silent', false));
  const user = { id: 'u', name: 'U' };
  try {
    const submitted = await store.submit('c', { type: 'message', conversationId: 'c', message: { id: 'm1', role: 'user', author: user, text: 'hi', createdAt: 1 } }, { replyId: 'r1', inReplyTo: 'm1', user });
    assert.ok(submitted.kind === 'appended' && submitted.start, 'this node holds the lease');
    await store.log.append('c', { type: 'reply.start', conversationId: 'c', replyId: 'r1', inReplyTo: 'm1', model: 'm' }, { ordinal: 0 });
    const delta = () => ({ type: 'reply.delta' as const, conversationId: 'c', replyId: 'r1', text: 'once' });
    assert.ok(await store.log.append('c', delta(), { ordinal: 1 }));
    assert.is(await store.log.append('c', delta(), { ordinal: 1 }), undefined, 'the resent write is recognised');
    const bill = { replyId: 'r1', conversationId: 'c', userId: 'u', model: 'm', dialect: 'chat', promptTokens: 3, completionTokens: 1, source: 'estimated' as const, finishReason: 'stop' as const, at: Date.now() };
    const end = () => ({ type: 'reply.end' as const, conversationId: 'c', replyId: 'r1', finishReason: 'stop' as const });
    assert.ok(await store.log.append('c', end(), { ordinal: 2 }, bill));
    assert.is(await store.log.append('c', end(), { ordinal: 2 }, bill), undefined, 'the resent end is recognised');
    const billed: string[] = [];
    await store.ledger.read({ from: 0, to: Date.now() + 1, userId: 'u' }, (entries) => billed.push(...entries.map((e) => e.replyId)));
    assert.equal(billed, ['r1'], 'and billed once');
    const snap = await store.log.snapshot('c');
    assert.equal(snap.history.map((m) => m.text), ['hi', 'once']);
    const events = await store.log.eventsSince('c', 0);
    assert.equal(events?.events.map((e) => e.event.type), ['message', 'reply.start', 'reply.delta', 'reply.end']);
  } finally {
    await redis.del(...Object.values(keys.append('c', 'u')));
    redis.disconnect();
  }
});

test.run();
