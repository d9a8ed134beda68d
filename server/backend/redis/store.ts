// The Redis ConversationStore: state every relay node shares. Each write is
// one Lua script (see redis-scripts.ts) that allocates the seq, appends to the
// conversation's stream, folds the history and publishes to every node, so
// all nodes see one sequence. Reads validate what comes back with the
// protocol's schemas.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { HistoryMessage, SendOptions, User } from '../../../shared/protocol.js';
import { toContextMessage, type ContextMessage } from '../../reply/context.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  adoptScript,
  appendScript,
  CONVERSATION_KEYS,
  nextScript,
  removeQueuedScript,
  renewScript,
  submitScript,
} from './scripts.js';
import {
  parseEvent,
  type ConversationStore,
  type EventInput,
  type Fence,
  type MessageInput,
  type Origin,
  type QueuedReply,
  type Snapshot,
  type StoredEvent,
  type StoreLimits,
  type Submission,
} from '../store.js';

export interface RedisStoreOptions extends StoreLimits {
  prefix: string;
  nodeId: string;
  leaseMs: number;
  retentionMs: number;
}

/** A Lua script run by its SHA, loaded again when Redis forgot it (a restart). */
export class Script {
  private readonly sha: string;
  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

const scripts = {
  append: new Script(appendScript),
  submit: new Script(submitScript),
  next: new Script(nextScript),
  adopt: new Script(adoptScript),
  renew: new Script(renewScript),
  removeQueued: new Script(removeQueuedScript),
};

const Job = z.object({ replyId: z.string(), inReplyTo: z.string(), user: User, options: SendOptions.optional() });
const Member = z.object({ n: z.string(), u: User });
const ORPHAN_ORDINAL = Number.MAX_SAFE_INTEGER;

function toJob(json: string): QueuedReply {
  const job = Job.parse(JSON.parse(json));
  return { ...job, options: job.options };
}

export class RedisStore implements ConversationStore {
  private readonly tokenCounts = new Map<string, ContextMessage>();

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisStoreOptions,
    private readonly log: Logger,
  ) {}

  /** Every key of a conversation, in the order the scripts expect. */
  keys(conversationId: string): string[] {
    return CONVERSATION_KEYS.map((k) => this.key(conversationId, k));
  }

  key(conversationId: string, name: (typeof CONVERSATION_KEYS)[number]): string {
    return `${this.opts.prefix}{c:${conversationId}}:${name}`;
  }

  channel(conversationId: string): string {
    return `${this.opts.prefix}{c:${conversationId}}:ch`;
  }

  nodeKey(nodeId: string): string {
    return `${this.opts.prefix}node:${nodeId}`;
  }

  /** ARGV 1-10 of the append script. */
  private commonArgs(conversationId: string, event: EventInput, origin: Origin | undefined, type: string = event.type): Array<string | number> {
    const { eventLogMax, retentionMs, historyLimit, nodeId, leaseMs } = this.opts;
    const json = JSON.stringify(event);
    return [type, json.slice(1), Date.now(), eventLogMax, retentionMs, historyLimit, this.channel(conversationId), origin ? JSON.stringify(origin) : '', nodeId, leaseMs];
  }

  async append(conversationId: string, event: EventInput, fence?: Fence): Promise<void> {
    await this.appendReplyEvent(conversationId, event, fence?.ordinal ?? ORPHAN_ORDINAL);
  }

  async endQueued(conversationId: string, job: QueuedReply): Promise<void> {
    const event: EventInput = { type: 'reply.end', conversationId, replyId: job.replyId, finishReason: 'cancelled' };
    await this.appendReplyEvent(conversationId, event, 0, 'reply.dropped');
  }

  private async appendReplyEvent(conversationId: string, event: EventInput, ordinal: number, type: string = event.type): Promise<void> {
    if (event.type === 'message') throw new Error('messages are appended with submit()');
    const d = event.type === 'reply.delta' ? event : undefined;
    const end = event.type === 'reply.end' ? event : undefined;
    const args = [
      ...this.commonArgs(conversationId, event, undefined, type),
      event.replyId,
      ordinal,
      d?.text ?? '',
      d?.reasoning ?? '',
      d?.refusal ?? '',
      end?.finishReason ?? '',
      end?.toolCalls?.length ? JSON.stringify(end.toolCalls) : '',
      event.type === 'reply.start' ? event.model : '',
    ];
    const result = await scripts.append.run(this.redis, this.keys(conversationId), args);
    if (result === 'lost-lease') throw new RelayError('internal', 'this node no longer holds the reply (lease lost)');
  }

  async submit(conversationId: string, message: MessageInput, reply: QueuedReply | undefined, origin: Origin): Promise<Submission> {
    const m = message.message;
    const historyEntry: HistoryMessage = { id: m.id, role: 'user', author: m.author, text: m.text, createdAt: m.createdAt, ...(m.clientMessageId ? { clientMessageId: m.clientMessageId } : {}) };
    const args = [
      ...this.commonArgs(conversationId, message, origin),
      JSON.stringify(historyEntry),
      m.clientMessageId ?? `#${m.id}`,
      reply ? JSON.stringify(reply) : '',
      reply?.replyId ?? '',
      this.opts.maxQueuedReplies,
    ];
    const result = await scripts.submit.run(this.redis, this.keys(conversationId), args);
    if (!Array.isArray(result)) throw new Error('unexpected submit result');
    const [kind, json, start] = result;
    if (kind === 'queue-full') return { kind: 'queue-full' };
    if (typeof json !== 'string') throw new Error('unexpected submit result');
    const stored: StoredEvent = { json, event: parseEvent(json) };
    return kind === 'duplicate' ? { kind: 'duplicate', stored } : { kind: 'appended', stored, start: start === 1 };
  }

  async findMessage(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined> {
    const json = await this.redis.hget(this.key(conversationId, 'ids'), clientMessageId);
    return json === null ? undefined : { json, event: parseEvent(json) };
  }

  async snapshot(conversationId: string): Promise<Snapshot> {
    const key = (name: (typeof CONVERSATION_KEYS)[number]) => this.key(conversationId, name);
    const results = await this.redis.multi().get(key('seq')).zrange(key('hist'), 0, -1).hgetall(key('st')).get(key('st:text')).exec();
    if (!results) throw new Error('snapshot transaction aborted');
    const [head, members, inFlight, streamed] = results.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const snap: Snapshot = {
      seq: Number(head ?? 0),
      history: z.array(z.string()).parse(members).map((json) => HistoryMessage.parse(JSON.parse(json))),
    };
    const flight = z.object({ replyId: z.string(), seq: z.coerce.number(), model: z.string().optional() }).safeParse(inFlight);
    if (flight.success) {
      const { replyId, seq, model } = flight.data;
      snap.streaming = { replyId, seq, text: typeof streamed === 'string' ? streamed : '', ...(model ? { model } : {}) };
    }
    return snap;
  }

  async eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined> {
    const head = Number((await this.redis.get(this.key(conversationId, 'seq'))) ?? 0);
    if (since > head) return undefined; // a seq from another life of this conversation
    if (since === head) return [];
    const entries = await this.redis.xrange(this.key(conversationId, 'log'), `${since + 1}-0`, '+');
    const first = entries[0];
    if (!first || first[0] !== `${since + 1}-0`) return undefined;
    return entries.map(([, fields]) => {
      const json = fields[1] ?? '';
      return { json, event: parseEvent(json) };
    });
  }

  async context(conversationId: string): Promise<ContextMessage[]> {
    const out: ContextMessage[] = [];
    for (const json of await this.redis.zrange(this.key(conversationId, 'hist'), 0, -1)) {
      const message = HistoryMessage.parse(JSON.parse(json));
      if (message.role === 'assistant' && !message.text) continue;
      // Token counts are worth remembering: the same history is counted for every reply.
      let counted = this.tokenCounts.get(message.id);
      if (!counted) {
        counted = toContextMessage(message);
        this.tokenCounts.set(message.id, counted);
        if (this.tokenCounts.size > 10_000) this.tokenCounts.delete(this.tokenCounts.keys().next().value!);
      }
      out.push(counted);
    }
    return out;
  }

  async nextReply(conversationId: string): Promise<QueuedReply | undefined> {
    const job = await scripts.next.run(this.redis, this.keys(conversationId), [this.opts.nodeId, this.opts.leaseMs]);
    return typeof job === 'string' ? toJob(job) : undefined;
  }

  async removeQueued(conversationId: string, replyId: string): Promise<QueuedReply | undefined> {
    const job = await scripts.removeQueued.run(this.redis, this.keys(conversationId), [replyId]);
    return typeof job === 'string' ? toJob(job) : undefined;
  }

  async clearQueue(conversationId: string): Promise<QueuedReply[]> {
    const queue = this.key(conversationId, 'queue');
    const results = await this.redis.multi().lrange(queue, 0, -1).del(queue).exec();
    return z.array(z.string()).parse(results?.[0]?.[1] ?? []).map(toJob);
  }

  async replyState(conversationId: string): Promise<{ running: string | undefined; queued: number }> {
    const [holder, queued] = await Promise.all([this.redis.get(this.key(conversationId, 'lease')), this.redis.llen(this.key(conversationId, 'queue'))]);
    return { running: holder ? holder.slice(holder.indexOf('|') + 1) : undefined, queued };
  }

  async renewLease(conversationId: string, replyId: string): Promise<void> {
    await scripts.renew.run(this.redis, this.keys(conversationId), [this.opts.nodeId, replyId, this.opts.leaseMs]);
  }

  async adopt(conversationId: string): Promise<QueuedReply | undefined> {
    const result = await scripts.adopt.run(this.redis, this.keys(conversationId), [this.opts.nodeId, this.opts.leaseMs]);
    if (typeof result !== 'string' || result === '') return undefined;
    if (result.startsWith('job:')) return toJob(result.slice(4));
    const replyId = result.slice(4);
    this.log.warn({ conversationId, replyId }, 'the node running this reply was lost; ending it');
    await this.append(conversationId, {
      type: 'reply.end',
      conversationId,
      replyId,
      finishReason: 'error',
      error: { code: 'internal', message: 'the relay node running this reply was lost' },
    });
    return this.nextReply(conversationId);
  }

  async addMember(conversationId: string, memberId: string, user: User): Promise<void> {
    const members = this.key(conversationId, 'members');
    await this.redis.multi().hset(members, memberId, JSON.stringify({ n: this.opts.nodeId, u: user })).pexpire(members, this.opts.retentionMs).exec();
  }

  async removeMember(conversationId: string, memberId: string): Promise<void> {
    await this.redis.hdel(this.key(conversationId, 'members'), memberId);
  }

  /** Members of every live node; entries of nodes whose heartbeat lapsed are dropped. */
  async members(conversationId: string): Promise<User[]> {
    const key = this.key(conversationId, 'members');
    const entries = Object.entries(await this.redis.hgetall(key)).flatMap(([id, json]) => {
      const parsed = Member.safeParse(JSON.parse(json));
      return parsed.success ? [{ id, ...parsed.data }] : [];
    });
    const nodes = [...new Set(entries.map((e) => e.n))];
    const alive = nodes.length ? await this.redis.mget(...nodes.map((n) => this.nodeKey(n))) : [];
    const live = new Set(nodes.filter((_, i) => alive[i] !== null));
    const dead = entries.filter((e) => !live.has(e.n)).map((e) => e.id);
    if (dead.length) await this.redis.hdel(key, ...dead);
    const users = new Map<string, User>();
    for (const e of entries) if (live.has(e.n)) users.set(e.u.id, e.u);
    return [...users.values()];
  }

  /** Nothing of a conversation is held in this process; Redis keeps it until the retention expires. */
  async evict(): Promise<void> {}

  size(): number {
    return 0;
  }

  async close(): Promise<void> {}
}
