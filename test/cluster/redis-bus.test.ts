import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Delivery } from '../../server/rooms/bus.js';
import { createLogger } from '../../server/log.js';
import { RedisBus } from '../../server/backend/redis/bus.js';
import { RedisStore } from '../../server/backend/redis/store.js';
import type { StoredEvent } from '../../server/backend/store.js';
import { redisAvailable, REDIS_URL } from '../redis.js';

const available = await redisAvailable();
const log = createLogger('silent', false);

/** The real store, except that reading the retained stream waits until the test opens the gate. */
class GatedStore extends RedisStore {
  gate: Promise<void> = Promise.resolve();
  override async eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined> {
    await this.gate;
    return super.eventsSince(conversationId, since);
  }
}

test('events arriving while a gap fill waits on Redis overflow the bounded queue, and still reach members in order, once each', async () => {
  if (!available) return console.log('Redis is not reachable; skipping');
  const pub = new Redis(REDIS_URL);
  const sub = new Redis(REDIS_URL);
  const store = new GatedStore(
    pub,
    { prefix: `bus-${randomUUID()}:`, nodeId: 'n1', leaseMs: 5000, retentionMs: 60_000, historyLimit: 100, eventLogMax: 1000, eventLogMaxAgeMs: 60_000, eventLogMaxBytes: 1 << 20, maxQueuedReplies: 4 },
    log,
  );
  const bus = new RedisBus(pub, sub, store, log, { maxQueuedDeliveries: 3 });
  const got: number[] = [];
  let last!: () => void;
  // No delivered() here: its timeout reads the stream again, which would hide events the overflow lost.
  const all = new Promise<void>((resolve) => (last = resolve));
  const deliver = (d: Delivery) => {
    if (!d.event) return;
    got.push(d.event.seq);
    if (d.event.seq === 12) last();
  };
  const subscription = bus.subscribe('c1', { deliver, cancel: () => undefined });
  await subscription.ready;
  const send = (n: number) =>
    store.submit(
      'c1',
      { type: 'message', conversationId: 'c1', ref: undefined, message: { id: `m${n}`, role: 'user', author: { id: 'u', name: 'U' }, text: `${n}`, createdAt: n } },
      undefined,
      { connectionId: 'x' },
    );
  try {
    // Event 1 is lost on the way (this node is not listening), so event 2 opens a gap whose fill waits.
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    await sub.unsubscribe(store.channel('c1'));
    await send(1);
    await sub.subscribe(store.channel('c1'));
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
    await pub.del(...store.keys('c1'));
    sub.disconnect();
    pub.disconnect();
  }
});

test.run();
