// Per-user limits shared by every node through Redis: replies in flight,
// replies per minute and the token quota hold for a user wherever their
// sockets are connected.
import type { Redis } from 'ioredis';
import { RelayError } from '../../errors.js';
import type { UserLimits, UserLimitSettings } from '../../session/limits.js';
import { Script } from './store.js';
import { endReplyScript, startReplyScript } from './scripts.js';

const startReply = new Script(startReplyScript);
const endReply = new Script(endReplyScript);

export class RedisUserLimits implements UserLimits {
  /** Replies in flight on this node, per user: only for this node's stats. */
  private readonly local = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly s: UserLimitSettings,
    private readonly prefix: string,
    /** A crashed node's count must not pin a user forever. */
    private readonly activeExpiryMs: number,
  ) {}

  private key(userId: string, what: string): string {
    return `${this.prefix}u:{${userId}}:${what}`;
  }

  private quotaKey(userId: string): string {
    return this.key(userId, `q:${Math.floor(Date.now() / this.s.tokenQuotaWindowMs)}`);
  }

  async takeMessage(userId: string): Promise<void> {
    const key = this.key(userId, `mpm:${Math.floor(Date.now() / 60_000)}`);
    const results = await this.redis.multi().incr(key).expire(key, 120).exec();
    if (Number(results?.[0]?.[1] ?? 0) > this.s.messagesPerMinute) {
      throw new RelayError('rate_limited', 'too many messages per minute for this user');
    }
  }

  async startReply(userId: string): Promise<void> {
    const keys = [this.key(userId, 'active'), this.key(userId, `rpm:${Math.floor(Date.now() / 60_000)}`), this.quotaKey(userId)];
    const verdict = await startReply.run(this.redis, keys, [this.s.maxActiveReplies, this.s.repliesPerMinute, this.s.tokenQuota, this.activeExpiryMs]);
    if (verdict === 'quota') throw new RelayError('quota_exceeded', 'the token quota of this user is used up for now');
    if (verdict === 'active') throw new RelayError('rate_limited', 'too many replies in flight for this user');
    if (verdict === 'rate') throw new RelayError('rate_limited', 'too many replies per minute for this user');
    this.local.set(userId, (this.local.get(userId) ?? 0) + 1);
  }

  async endReply(userId: string): Promise<void> {
    const n = (this.local.get(userId) ?? 1) - 1;
    if (n > 0) this.local.set(userId, n);
    else this.local.delete(userId);
    await endReply.run(this.redis, [this.key(userId, 'active')], []);
  }

  async spend(userId: string, tokens: number): Promise<boolean> {
    if (this.s.tokenQuota === 0 || tokens === 0) return true;
    const key = this.quotaKey(userId);
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
