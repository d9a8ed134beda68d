import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Delivery } from '../../server/rooms/bus.js';
import { createLogger } from '../../server/log.js';
import { RedisBus } from '../../server/backend/redis/bus.js';
import { RedisStore } from '../../server/backend/redis/store.js';
import { Keys } from '../../server/backend/redis/keys.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const available = await redisAvailable();
const log = createLogger('silent', false);

/** Two connections (commands, subscriptions) and a real store under a prefix of this test's own. */
function connect() {
  const pub = new Redis(REDIS_URL ?? '');
  const sub = new Redis(REDIS_URL ?? '');
  const keys = new Keys(`bus-${randomUUID()}:`);
  const limits = { historyLimit: 100, eventLogMax: 1000, eventLogMaxAgeMs: 60_000, eventLogMaxBytes: 1 << 20, maxQueuedReplies: 4, conversationIdleMs: 600_000, ledgerRetentionMs: 60_000, ledgerMaxEntries: 1_000 };
  const store = new RedisStore(pub, keys, { nodeId: 'n1', leaseMs: 5000, retentionMs: 60_000, ...limits }, log);
  return { pub, sub, keys, store };
}

// Without Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

it('events arriving while a gap fill waits on Redis overflow the bounded queue, and still reach members in order, once each', async () => {
  const { pub, sub, keys, store } = connect();
  // The real log, except that reading the retained stream waits until the test opens the gate.
  let gate: Promise<void> = Promise.resolve();
  const gated = {
    eventsSince: async (conversationId: string, since: number) => {
      await gate;
      return store.log.eventsSince(conversationId, since);
    },
  };
  const bus = new RedisBus(pub, sub, keys, gated, log, { maxQueuedDeliveries: 3 });
  const got: number[] = [];
  let last!: () => void;
  // No delivered() here: its timeout reads the stream again, which would hide events the overflow lost.
  const all = new Promise<void>((resolve) => (last = resolve));
  const deliver = (d: Delivery) => {
    if (!d.event) return;
    got.push(d.event.seq);
    if (d.event.seq === 12) last();
  };
  const subscription = bus.subscribe('c1', { deliver, cancel: () => undefined, lost: () => undefined, deleted: () => undefined });
  await subscription.ready;
  // As a conversation does: the store gives the event its seq, then the bus carries it.
  const send = async (n: number) => {
    const message = { id: `m${n}`, role: 'user' as const, author: { id: 'u', name: 'U' }, text: `${n}`, createdAt: n };
    const submission = await store.submit('c1', { type: 'message', conversationId: 'c1', message }, undefined);
    if (submission.kind === 'appended') bus.publish('c1', submission.stored);
  };
  try {
    // Event 1 is lost on the way (this node is not listening), so event 2 opens a gap whose fill waits.
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    await sub.unsubscribe(keys.channel('c1'));
    await send(1);
    await sub.subscribe(keys.channel('c1'));
    const arrived = new Promise<void>((resolve) => sub.on('message', (_channel: string, message: string) => message.includes('"seq":12') && resolve()));
    for (let n = 2; n <= 12; n++) await send(n);
    // Events 2–12 have all reached this node: one waits for the gap fill, two more are queued, the rest were dropped.
    await arrived;
    assert.equal(got, []);
    open();
    await all;
    assert.equal(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  } finally {
    subscription.close();
    await bus.close();
    await pub.del(...Object.values(keys.conversation('c1')));
    sub.disconnect();
    pub.disconnect();
  }
});

it('a malformed pub/sub message is dropped: the node stays up and the next event still arrives', async () => {
  const { pub, sub, keys, store } = connect();
  const bus = new RedisBus(pub, sub, keys, store.log, log);
  const got: number[] = [];
  let arrived!: () => void;
  const first = new Promise<void>((resolve) => (arrived = resolve));
  const subscription = bus.subscribe('c2', {
    deliver: (d) => {
      if (d.event) got.push(d.event.seq);
      arrived();
    },
    cancel: () => undefined,
    lost: () => undefined,
    deleted: () => undefined,
  });
  await subscription.ready;
  try {
    for (const junk of ['E{"seq":', 'E\n{"type":"reply.delta"}', 'F{"connectionId":7}\n{}', 'Cgrace', '']) await pub.publish(keys.channel('c2'), junk);
    const message = { id: 'm1', role: 'user' as const, author: { id: 'u', name: 'U' }, text: 'still here', createdAt: 1 };
    const submission = await store.submit('c2', { type: 'message', conversationId: 'c2', message }, undefined);
    if (submission.kind === 'appended') bus.publish('c2', submission.stored);
    await first;
    assert.equal(got, [1]);
  } finally {
    subscription.close();
    await bus.close();
    await pub.del(...Object.values(keys.conversation('c2')));
    sub.disconnect();
    pub.disconnect();
  }
});

test.run();
