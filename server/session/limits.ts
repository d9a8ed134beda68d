// Limits on what clients may do: frame rates per socket, connections per IP,
// and per-user limits that hold across all of a user's sockets (replies in
// flight, replies per minute, completion tokens per window). Every map here
// is bounded by live users or IPs and swept of idle entries.
import { RelayError } from '../errors.js';

/** A classic token bucket: `capacity` tokens, refilled continuously at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    now = Date.now(),
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again, i.e. it has nothing to remember. */
  full(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }
}

/** One token bucket per key (user, IP); full buckets are forgotten. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {}

  take(key: string, now = Date.now()): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(this.capacity, this.perSecond, now)));
    return bucket.take(now);
  }

  sweep(now = Date.now()): void {
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** Counts each user's replies in flight (running or queued) against a cap. */
export class ReplySlots {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly maxPerUser: number) {}

  tryAcquire(userId: string): boolean {
    const n = this.inFlight.get(userId) ?? 0;
    if (n >= this.maxPerUser) return false;
    this.inFlight.set(userId, n + 1);
    return true;
  }

  release(userId: string): void {
    const n = (this.inFlight.get(userId) ?? 0) - 1;
    if (n > 0) this.inFlight.set(userId, n);
    else this.inFlight.delete(userId);
  }

  /** Users with replies in flight (0 once everything has ended). */
  size(): number {
    return this.inFlight.size;
  }
}

/** Lets one event per key through per interval; drops the rest (typing indicators). */
export class Throttle {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  allow(key: string, now = Date.now()): boolean {
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}

/** The quota window `now` falls in: windows are aligned to the epoch, so every node agrees on them. */
export function quotaWindow(now: number, windowMs: number): number {
  return Math.floor(now / windowMs);
}

/** Completion tokens per user per fixed window; 0 means no quota. */
export class TokenQuota {
  private readonly windows = new Map<string, { window: number; used: number }>();

  constructor(
    readonly limit: number,
    private readonly windowMs: number,
  ) {}

  private window(userId: string, now: number): { window: number; used: number } {
    const current = quotaWindow(now, this.windowMs);
    let w = this.windows.get(userId);
    if (!w || w.window !== current) this.windows.set(userId, (w = { window: current, used: 0 }));
    return w;
  }

  /** Is there anything left for this user in the current window? */
  available(userId: string, now = Date.now()): boolean {
    return this.limit === 0 || this.window(userId, now).used < this.limit;
  }

  /** Count tokens against the user; false once the quota is crossed. */
  spend(userId: string, tokens: number, now = Date.now()): boolean {
    if (this.limit === 0) return true;
    const w = this.window(userId, now);
    w.used += tokens;
    return w.used <= this.limit;
  }

  sweep(now = Date.now()): void {
    const current = quotaWindow(now, this.windowMs);
    for (const [user, w] of this.windows) if (w.window !== current) this.windows.delete(user);
  }
}

export interface UserLimitSettings {
  messagesPerMinute: number;
  maxActiveReplies: number;
  repliesPerMinute: number;
  tokenQuota: number;
  tokenQuotaWindowMs: number;
}

/** Everything a user may spend on replies, across all of their sockets (and, in a cluster, nodes). */
export interface UserLimits {
  /** Count one message (with or without a reply) against the user's per-minute allowance, or throw rate_limited. */
  takeMessage(userId: string): Promise<void>;
  /** Reserve one reply for the user, or throw the RelayError that says why not. Pair with endReply. */
  startReply(userId: string): Promise<void>;
  endReply(userId: string): Promise<void>;
  /** Count completion tokens against the user's quota; false once it is crossed. */
  spend(userId: string, tokens: number): boolean | Promise<boolean>;
  /** Users with replies in flight on this node (0 once everything has ended). */
  usersWithReplies(): number;
  sweep(): void;
  close(): Promise<void>;
}

export class MemoryUserLimits implements UserLimits {
  private readonly slots: ReplySlots;
  private readonly replyRate: KeyedBuckets;
  private readonly messageRate: KeyedBuckets;
  private readonly quota: TokenQuota;

  constructor(s: UserLimitSettings) {
    this.slots = new ReplySlots(s.maxActiveReplies);
    this.messageRate = new KeyedBuckets(s.messagesPerMinute, s.messagesPerMinute / 60);
    this.replyRate = new KeyedBuckets(s.repliesPerMinute, s.repliesPerMinute / 60);
    this.quota = new TokenQuota(s.tokenQuota, s.tokenQuotaWindowMs);
  }

  async takeMessage(userId: string): Promise<void> {
    if (!this.messageRate.take(userId)) throw new RelayError('rate_limited', 'too many messages per minute for this user');
  }

  async startReply(userId: string): Promise<void> {
    if (!this.quota.available(userId)) throw new RelayError('quota_exceeded', 'the token quota of this user is used up for now');
    if (!this.slots.tryAcquire(userId)) throw new RelayError('rate_limited', 'too many replies in flight for this user');
    if (!this.replyRate.take(userId)) {
      this.slots.release(userId);
      throw new RelayError('rate_limited', 'too many replies per minute for this user');
    }
  }

  async endReply(userId: string): Promise<void> {
    this.slots.release(userId);
  }

  /** Synchronous: this runs once per token. */
  spend(userId: string, tokens: number): boolean {
    return this.quota.spend(userId, tokens);
  }

  usersWithReplies(): number {
    return this.slots.size();
  }

  sweep(now = Date.now()): void {
    this.replyRate.sweep(now);
    this.messageRate.sweep(now);
    this.quota.sweep(now);
  }

  async close(): Promise<void> {}
}

export type Admission = 'ok' | 'too-many-per-ip' | 'server-full';

/** Connections at upgrade time: per-IP count and rate, and a global cap. */
export class ConnectionGate {
  private readonly perIp = new Map<string, number>();
  private readonly rate: KeyedBuckets;
  private total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
    perIpPerMinute: number,
  ) {
    this.rate = new KeyedBuckets(perIpPerMinute, perIpPerMinute / 60);
  }

  admit(ip: string): Admission {
    if (this.total >= this.maxTotal) return 'server-full';
    if ((this.perIp.get(ip) ?? 0) >= this.maxPerIp || !this.rate.take(ip)) return 'too-many-per-ip';
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    return 'ok';
  }

  release(ip: string): void {
    this.total--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }

  sweep(now = Date.now()): void {
    this.rate.sweep(now);
  }
}
