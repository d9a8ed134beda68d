// Per-user limits shared by every node through Redis: messages and replies per
// minute (the same token bucket as in memory), replies in flight and the token
// quota hold for a user wherever their sockets are connected.
import type { Redis } from 'ioredis';
import { RelayError } from '../../errors.js';
import { quotaWindow, type UserLimits, type UserLimitSettings } from '../../session/limits.js';
import type { Keys } from './keys.js';
import { endReplyScript, startReplyScript, takeTokenScript } from './scripts.js';

export class RedisUserLimits implements UserLimits {
  /** Replies in flight on this node, per user: only for this node's stats. */
  private readonly local = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly s: UserLimitSettings,
    private readonly keys: Keys,
    /** A crashed node's count must not pin a user forever. */
    private readonly activeExpiryMs: number,
  ) {}

  private quotaKey(userId: string, now: number): string {
    return this.keys.user(userId, `q:${quotaWindow(now, this.s.tokenQuotaWindowMs)}`);
  }

  async takeMessage(userId: string): Promise<void> {
    const perMinute = this.s.messagesPerMinute;
    const taken = await takeTokenScript.run(this.redis, { bucket: this.keys.user(userId, 'mpm') }, { capacity: perMinute, perSecond: perMinute / 60, now: Date.now() });
    if (taken !== 1) throw new RelayError('rate_limited', 'too many messages per minute for this user');
  }

  async startReply(userId: string): Promise<void> {
    const now = Date.now();
    const keys = { active: this.keys.user(userId, 'active'), rate: this.keys.user(userId, 'rpm'), quota: this.quotaKey(userId, now) };
    const args = { maxActive: this.s.maxActiveReplies, perMinute: this.s.repliesPerMinute, tokenQuota: this.s.tokenQuota, activeExpiryMs: this.activeExpiryMs, now };
    const verdict = await startReplyScript.run(this.redis, keys, args);
    if (verdict === 'quota') throw new RelayError('quota_exceeded', 'the token quota of this user is used up for now');
    if (verdict === 'active') throw new RelayError('rate_limited', 'too many replies in flight for this user');
    if (verdict === 'rate') throw new RelayError('rate_limited', 'too many replies per minute for this user');
    this.local.set(userId, (this.local.get(userId) ?? 0) + 1);
  }

  async endReply(userId: string): Promise<void> {
    const n = (this.local.get(userId) ?? 1) - 1;
    if (n > 0) this.local.set(userId, n);
    else this.local.delete(userId);
    await endReplyScript.run(this.redis, { active: this.keys.user(userId, 'active') }, {});
  }

  async spend(userId: string, tokens: number): Promise<boolean> {
    if (this.s.tokenQuota === 0 || tokens === 0) return true;
    const key = this.quotaKey(userId, Date.now());
    const results = await this.redis.multi().incrby(key, tokens).pexpire(key, this.s.tokenQuotaWindowMs).exec();
    const used = Number(results?.[0]?.[1] ?? 0);
    return used <= this.s.tokenQuota;
  }

  usersWithReplies(): number {
    return this.local.size;
  }

  /** Redis expires what is no longer needed. */
  sweep(): void {}

  async close(): Promise<void> {}
}
