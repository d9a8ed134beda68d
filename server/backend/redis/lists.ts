// Each user's conversation list in Redis: a sorted set of their conversations
// by when they were last in each, a hash of the seq they had seen there, and
// per conversation the set of users listing it (so a delete finds them). The
// summaries are read from each conversation's own keys.
import type { Redis } from 'ioredis';
import type { ConversationSummary } from '../../../shared/protocol.js';
import { newestFirst } from '../list-order.js';
import { LISTED_PER_USER, type ConversationLists } from '../store.js';
import type { Keys } from './keys.js';
import type { RedisStoreOptions } from './options.js';
import { parseTree } from './tree.js';

export class RedisLists implements ConversationLists {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
  ) {}

  private userKeys(userId: string) {
    return { convs: this.keys.user(userId, 'convs'), seen: this.keys.user(userId, 'seen') };
  }

  async visit(userId: string, conversationId: string, seenSeq: number): Promise<void> {
    const { convs, seen } = this.userKeys(userId);
    const listed = this.keys.conversation(conversationId).listed;
    const ttl = this.opts.retentionMs;
    const results = await this.redis
      .multi()
      .zadd(convs, Date.now(), conversationId)
      .hset(seen, conversationId, seenSeq)
      .sadd(listed, userId)
      .pexpire(convs, ttl)
      .pexpire(seen, ttl)
      .pexpire(listed, ttl)
      .zcard(convs)
      .exec();
    const size = Number(results?.at(-1)?.[1] ?? 0);
    if (size > LISTED_PER_USER) await this.trim(userId, size - LISTED_PER_USER);
  }

  /** The least recently visited go, `excess` of them. */
  private async trim(userId: string, excess: number): Promise<void> {
    const { convs, seen } = this.userKeys(userId);
    const gone = await this.redis.zrange(convs, 0, excess - 1);
    if (gone.length) await this.redis.multi().zrem(convs, ...gone).hdel(seen, ...gone).exec();
  }

  async page(userId: string, before: number | undefined): Promise<ConversationSummary[]> {
    const { convs, seen } = this.userKeys(userId);
    const [ids, seenBy] = await Promise.all([this.redis.zrange(convs, 0, -1), this.redis.hgetall(seen)]);
    const read = this.redis.pipeline();
    for (const id of ids) {
      const k = this.keys.conversation(id);
      read.get(k.seq).hmget(k.tree, 'settings', 'owner', 'at');
    }
    const results = (await read.exec()) ?? [];
    const summaries: ConversationSummary[] = [];
    ids.forEach((conversationId, i) => {
      const seq = Number(results[2 * i]?.[1] ?? 0);
      const [settings, owner, at] = arrayOf(results[2 * i + 1]?.[1]);
      // Expired or deleted since: off the list.
      if (!at || seq === 0) return;
      const lastActivity = Number(at);
      if (before !== undefined && lastActivity >= before) return;
      const tree = parseTree(undefined, settings, undefined, owner);
      const title = tree.settings.title;
      summaries.push({ conversationId, seq, lastActivity, unread: seq > Number(seenBy[conversationId] ?? 0), ...(title ? { title } : {}), ...(tree.owner ? { owner: tree.owner } : {}) });
    });
    return newestFirst(summaries);
  }

  /** The user's list goes, and they from the conversations' sets of who lists them. */
  async forgetUser(userId: string): Promise<void> {
    const { convs, seen } = this.userKeys(userId);
    const listed = await this.redis.zrange(convs, 0, -1);
    const drop = this.redis.multi().del(convs, seen);
    for (const id of listed) drop.srem(this.keys.conversation(id).listed, userId);
    await drop.exec();
  }

  /** A deleted conversation leaves the lists of the users who had it. */
  async forget(conversationId: string, users: readonly string[]): Promise<void> {
    if (users.length === 0) return;
    const drop = this.redis.pipeline();
    for (const userId of users) {
      const { convs, seen } = this.userKeys(userId);
      drop.zrem(convs, conversationId).hdel(seen, conversationId);
    }
    await drop.exec();
  }
}

/** An HMGET answer as pipelined: strings or nulls. */
function arrayOf(value: unknown): Array<string | null> {
  return Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : null)) : [];
}
