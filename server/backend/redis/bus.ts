// The Bus between relay nodes, on Redis pub/sub: one channel per
// conversation. A node publishes each event once the store has given it its
// seq; each node delivers them to its members strictly in seq order, and
// fills any gap (a message lost while the connection to Redis was down) from
// the conversation's retained stream, so members never see a hole.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Bus, Delivery, Subscriber, Subscription } from '../../rooms/bus.js';
import type { Logger } from '../../log.js';
import type { EventLog } from '../store.js';
import { parseEvent } from '../store.js';
import type { Keys } from './keys.js';

const Origin = z.object({ connectionId: z.string(), ref: z.string().optional(), skip: z.boolean().optional() });

interface Channel {
  conversationId: string;
  subscribers: Set<Subscriber>;
  /** The last seq delivered here, */
  lastSeq: number;
  /** in this life of the log (undefined while there is none). */
  epoch: string | undefined;
  ready: Promise<void>;
  /** Deliveries that had to wait (for the subscription, or behind a gap fill that reads Redis), one after another. */
  chain: Promise<void>;
  /** Steps on the chain not yet done; while there are none, an in-order event is delivered at once. */
  queued: number;
  /** A catch-up is queued behind a full chain: the events dropped meanwhile are read back from the stream. */
  catchUpQueued: boolean;
  /** Senders waiting for their own event to go out here, each with the timer that gives up on it. */
  waiters: Array<{ seq: number; resolve: () => void; timer?: NodeJS.Timeout }>;
}

/** How long a sender waits for its own message to come back through Redis. */
const DELIVERY_WAIT_MS = 2_000;

type EventDelivery = Delivery & { event: NonNullable<Delivery['event']> };

export interface RedisBusOptions {
  /** Events a channel holds while a gap fill waits on Redis; past it, they are read back from the stream afterwards. */
  maxQueuedDeliveries: number;
}

export class RedisBus implements Bus {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly keys: Keys,
    /** Where a gap is filled from: the retained log. */
    private readonly store: Pick<EventLog, 'eventsSince'>,
    private readonly log: Logger,
    private readonly opts: RedisBusOptions = { maxQueuedDeliveries: 10_000 },
  ) {
    sub.on('message', (channel: string, message: string) => {
      // A malformed message (another deployment's, a bug's) is logged and dropped: it must not take the node down.
      try {
        this.receive(channel, message);
      } catch (err) {
        this.log.warn({ err, channel }, 'malformed pub/sub message dropped');
      }
    });
    // After a reconnect, whatever was published meanwhile is read back from the streams,
    // unless the log itself is gone (a Redis that came back empty).
    // The subscriber connection is usually up already: its next 'ready' is a reconnect.
    let connected = sub.status === 'ready';
    sub.on('ready', () => {
      if (connected) for (const ch of this.channels.values()) this.enqueue(ch, () => this.recheck(ch));
      connected = true;
    });
  }

  publish(conversationId: string, delivery: Delivery): void {
    const origin = delivery.origin ? JSON.stringify(delivery.origin) : '';
    const head = delivery.event ? `E${delivery.epoch ?? ''}|${origin}` : `F${origin}`;
    void this.pub.publish(this.keys.channel(conversationId), `${head}\n${delivery.json}`).catch((err: unknown) => this.log.warn({ err }, 'publish failed'));
  }

  publishCancel(conversationId: string, replyId: string, reason: 'cancel' | 'grace'): void {
    void this.pub.publish(this.keys.channel(conversationId), `C${reason}\n${replyId}`).catch((err: unknown) => this.log.warn({ err }, 'publish failed'));
  }

  publishDeleted(conversationId: string): void {
    void this.pub.publish(this.keys.channel(conversationId), 'D\n').catch((err: unknown) => this.log.warn({ err }, 'publish failed'));
  }

  subscribe(conversationId: string, subscriber: Subscriber): Subscription {
    const name = this.keys.channel(conversationId);
    let ch = this.channels.get(name);
    if (!ch) {
      const created: Channel = {
        conversationId,
        subscribers: new Set(),
        lastSeq: 0,
        epoch: undefined,
        ready: Promise.resolve(),
        chain: Promise.resolve(),
        queued: 0,
        catchUpQueued: false,
        waiters: [],
      };
      created.ready = (async () => {
        await this.sub.subscribe(name);
        // Everything up to the head is in the store; the channel carries what comes after.
        const k = this.keys.conversation(conversationId);
        const [seq, epoch] = await this.pub.mget(k.seq, k.epoch);
        created.lastSeq = Number(seq ?? 0);
        created.epoch = epoch ?? undefined;
      })();
      // Until lastSeq is known, every event waits on the chain.
      this.enqueue(created, () => created.ready.catch((err: unknown) => this.log.error({ err, conversationId }, 'subscribe failed')));
      this.channels.set(name, (ch = created));
    }
    const channel = ch;
    channel.subscribers.add(subscriber);
    return {
      ready: channel.ready,
      delivered: (seq) => {
        if (channel.lastSeq >= seq) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const waiter: Channel['waiters'][number] = { seq, resolve: () => resolve() };
          channel.waiters.push(waiter);
          const timer = setTimeout(() => {
            // Lost on the way (a Redis blip)? Read it back from the stream, and let the sender go on.
            this.enqueue(channel, () => this.catchUp(channel));
            this.release(channel, waiter);
          }, DELIVERY_WAIT_MS);
          waiter.timer = timer;
          waiter.resolve = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      },
      close: () => {
        channel.subscribers.delete(subscriber);
        if (channel.subscribers.size > 0 || this.channels.get(name) !== channel) return;
        this.channels.delete(name);
        for (const w of channel.waiters.splice(0)) w.resolve();
        void this.sub.unsubscribe(name).catch(() => undefined);
      },
    };
  }

  private release(ch: Channel, waiter?: Channel['waiters'][number]): void {
    const done = ch.waiters.filter((w) => w === waiter || w.seq <= ch.lastSeq);
    if (done.length === 0) return;
    ch.waiters = ch.waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }

  private enqueue(ch: Channel, step: () => Promise<void>): void {
    ch.queued++;
    ch.chain = ch.chain
      .then(step)
      .catch((err: unknown) => this.log.error({ err, conversationId: ch.conversationId }, 'delivery failed'))
      .then(() => {
        ch.queued--;
      });
  }

  private receive(name: string, message: string): void {
    const ch = this.channels.get(name);
    if (!ch) return;
    const nl = message.indexOf('\n');
    const head = message.slice(1, nl);
    const body = message.slice(nl + 1);
    switch (message[0]) {
      case 'C':
        for (const s of ch.subscribers) s.cancel(body, head === 'grace' ? 'grace' : 'cancel');
        return;
      case 'D':
        for (const s of [...ch.subscribers]) s.deleted();
        return;
      case 'F': {
        const origin = head ? Origin.parse(JSON.parse(head)) : undefined;
        for (const s of ch.subscribers) s.deliver({ json: body, ...(origin ? { origin } : {}) });
        return;
      }
      case 'E': {
        const bar = head.indexOf('|');
        const epoch = head.slice(0, bar) || undefined;
        const originJson = head.slice(bar + 1);
        const origin = originJson ? Origin.parse(JSON.parse(originJson)) : undefined;
        const d: EventDelivery = { json: body, event: parseEvent(body), ...(origin ? { origin } : {}) };
        if (epoch !== ch.epoch) {
          // The first log of a conversation that had none is simply adopted; any other change means the log was lost.
          if (ch.epoch === undefined && ch.lastSeq === 0 && ch.queued === 0) ch.epoch = epoch;
          else this.enqueue(ch, async () => this.switchEpoch(ch, epoch));
        }
        // The usual case, once per token: the next seq with nothing waiting goes out now, without a promise.
        if (ch.queued === 0 && this.deliverNext(ch, d)) return;
        if (ch.queued < this.opts.maxQueuedDeliveries) return this.enqueue(ch, () => this.sequence(ch, d));
        // The stream retains it: one catch-up behind the queue reads back everything dropped here.
        if (ch.catchUpQueued) return;
        ch.catchUpQueued = true;
        this.enqueue(ch, () => {
          ch.catchUpQueued = false;
          return this.catchUp(ch);
        });
      }
    }
  }

  /** Delivers `d` if it is the next seq, drops it if it is an old one; false when there is a gap before it. */
  private deliverNext(ch: Channel, d: EventDelivery): boolean {
    const seq = d.event.seq;
    if (seq > ch.lastSeq + 1) return false;
    if (seq === ch.lastSeq + 1) this.deliver(ch, d);
    return true;
  }

  private deliver(ch: Channel, d: EventDelivery): void {
    ch.lastSeq = d.event.seq;
    for (const s of ch.subscribers) s.deliver(d);
    if (ch.waiters.length) this.release(ch);
  }

  private async sequence(ch: Channel, d: EventDelivery): Promise<void> {
    if (this.deliverNext(ch, d)) return;
    await this.catchUp(ch, d.event.seq);
    // What the stream no longer held is lost (catchUp said so); this event still goes out.
    if (d.event.seq > ch.lastSeq) this.deliver(ch, d);
  }

  /** A new life of the log: seqs count from 0 again, and every member here must start over. */
  private switchEpoch(ch: Channel, epoch: string | undefined): void {
    if (epoch === ch.epoch) return;
    this.log.warn({ conversationId: ch.conversationId, lastSeq: ch.lastSeq }, 'the conversation log was lost; members start over');
    ch.epoch = epoch;
    ch.lastSeq = 0;
    // Senders waiting for an event of the old log go on.
    for (const w of ch.waiters.splice(0)) w.resolve();
    for (const s of ch.subscribers) s.lost();
  }

  /** After a reconnect: has the log survived? Then read back what was missed. */
  private async recheck(ch: Channel): Promise<void> {
    const epoch = (await this.pub.get(this.keys.conversation(ch.conversationId).epoch)) ?? undefined;
    if (ch.epoch !== undefined && epoch !== ch.epoch) this.switchEpoch(ch, epoch);
    await this.catchUp(ch);
  }

  /** Deliver what the stream holds after lastSeq (and before `until`, when given). */
  private async catchUp(ch: Channel, until = Number.POSITIVE_INFINITY): Promise<void> {
    const missed = await this.store.eventsSince(ch.conversationId, ch.lastSeq, ch.epoch);
    if (!missed) {
      this.log.warn({ conversationId: ch.conversationId, lastSeq: ch.lastSeq }, 'missed events are no longer retained');
      return;
    }
    for (const stored of missed.events) {
      if (stored.event.seq >= until) break;
      if (stored.event.seq > ch.lastSeq) this.deliver(ch, stored);
    }
  }

  async close(): Promise<void> {
    const names = [...this.channels.keys()];
    for (const ch of this.channels.values()) for (const w of ch.waiters.splice(0)) w.resolve();
    this.channels.clear();
    if (names.length) await this.sub.unsubscribe(...names).catch(() => undefined);
  }
}
