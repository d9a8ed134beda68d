// The reply lease and queue in Redis: which node runs a conversation's reply,
// and what waits behind it. A node that stops renewing its lease is presumed
// dead; another node adopts the conversation.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ReplyJob, type Adopted, type ReplyLeases } from '../store.js';
import type { Keys } from './keys.js';
import type { RedisStoreOptions } from './options.js';
import { adoptScript, claimIdleScript, nextScript, removeQueuedScript, renewScript } from './scripts.js';

const AdoptResult = z.union([
  z.literal(''),
  z.tuple([z.literal('job'), z.string()]),
  z.tuple([z.literal('orphan'), z.string(), z.string(), z.string(), z.string(), z.string()]),
]);

function toJob(json: string): ReplyJob {
  return ReplyJob.parse(JSON.parse(json));
}

export class RedisReplies implements ReplyLeases {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
  ) {}

  private me() {
    return { node: this.opts.nodeId, leaseMs: this.opts.leaseMs };
  }

  async next(conversationId: string, endedReplyId: string): Promise<ReplyJob | undefined> {
    const k = this.keys.conversation(conversationId);
    const job = await nextScript.run(this.redis, { lease: k.lease, queue: k.queue, st: k.st }, { ...this.me(), replyId: endedReplyId });
    return typeof job === 'string' ? toJob(job) : undefined;
  }

  async asker(conversationId: string, replyId: string): Promise<string | undefined> {
    const k = this.keys.conversation(conversationId);
    const [[running, job, handed], queued] = await Promise.all([this.redis.hmget(k.st, 'replyId', 'job', 'handed'), this.redis.lrange(k.queue, 0, -1)]);
    if (running === replyId && job) return toJob(job).user.id;
    // Handed to a node, not started yet.
    const waiting = [...(handed ? [toJob(handed)] : []), ...queued.map(toJob)];
    return waiting.find((j) => j.replyId === replyId)?.user.id;
  }

  async claimIdle(conversationId: string, job: ReplyJob): Promise<boolean> {
    const k = this.keys.conversation(conversationId);
    return (await claimIdleScript.run(this.redis, { lease: k.lease, queue: k.queue }, { ...this.me(), replyId: job.replyId })) === 1;
  }

  async removeQueued(conversationId: string, replyId: string): Promise<ReplyJob | undefined> {
    const job = await removeQueuedScript.run(this.redis, { queue: this.keys.conversation(conversationId).queue }, { replyId });
    return typeof job === 'string' ? toJob(job) : undefined;
  }

  async clearQueue(conversationId: string): Promise<ReplyJob[]> {
    const queue = this.keys.conversation(conversationId).queue;
    const results = await this.redis.multi().lrange(queue, 0, -1).del(queue).exec();
    const jobs = results?.[0]?.[1];
    return Array.isArray(jobs) ? jobs.map((j) => toJob(String(j))) : [];
  }

  async state(conversationId: string): Promise<{ running: string | undefined; queued: number }> {
    const k = this.keys.conversation(conversationId);
    const [holder, queued] = await Promise.all([this.redis.get(k.lease), this.redis.llen(k.queue)]);
    return { running: holder ? holder.slice(holder.indexOf('|') + 1) : undefined, queued };
  }

  async renew(conversationId: string, replyId: string): Promise<void> {
    await renewScript.run(this.redis, { lease: this.keys.conversation(conversationId).lease }, { ...this.me(), replyId });
  }

  async adopt(conversationId: string): Promise<Adopted | undefined> {
    const k = this.keys.conversation(conversationId);
    const result = AdoptResult.parse(await adoptScript.run(this.redis, { lease: k.lease, st: k.st, queue: k.queue }, this.me()));
    if (result === '') return undefined;
    if (result[0] === 'job') return { job: toJob(result[1]) };
    const [, orphan, ordinal, job, responseId, sequence] = result;
    const asked = job ? toJob(job) : undefined;
    const resumable = responseId ? { ordinal: Number(ordinal), cursor: { responseId, sequence: Number(sequence) } } : undefined;
    return { orphan, ...(asked ? { asked } : {}), ...(resumable ? { resumable } : {}) };
  }
}
