// Member sets in Redis: every node lists its sockets under its own id, and an
// entry of a node whose heartbeat lapsed is dropped when read.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { User } from '../../../shared/protocol.js';
import type { MemberRegistry } from '../store.js';
import type { Keys } from './keys.js';
import type { RedisStoreOptions } from './options.js';

const Member = z.object({ n: z.string(), u: User });

export class RedisMembers implements MemberRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
  ) {}

  async add(conversationId: string, memberId: string, user: User): Promise<void> {
    const members = this.keys.conversation(conversationId).members;
    await this.redis.multi().hset(members, memberId, JSON.stringify({ n: this.opts.nodeId, u: user })).pexpire(members, this.opts.retentionMs).exec();
  }

  async remove(conversationId: string, memberId: string): Promise<void> {
    await this.redis.hdel(this.keys.conversation(conversationId).members, memberId);
  }

  /** Members of every live node. */
  async list(conversationId: string): Promise<User[]> {
    const key = this.keys.conversation(conversationId).members;
    const entries = Object.entries(await this.redis.hgetall(key)).flatMap(([id, json]) => {
      const parsed = Member.safeParse(JSON.parse(json));
      return parsed.success ? [{ id, ...parsed.data }] : [];
    });
    const nodes = [...new Set(entries.map((e) => e.n))];
    const alive = nodes.length ? await this.redis.mget(...nodes.map((n) => this.keys.node(n))) : [];
    const live = new Set(nodes.filter((_, i) => alive[i] !== null));
    const dead = entries.filter((e) => !live.has(e.n)).map((e) => e.id);
    if (dead.length) await this.redis.hdel(key, ...dead);
    const users = new Map<string, User>();
    for (const e of entries) if (live.has(e.n)) users.set(e.u.id, e.u);
    return [...users.values()];
  }
}
