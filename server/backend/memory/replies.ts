// The reply lease and queue of every conversation on this node. One process:
// the lease cannot be lost and nobody else can hold it.
import type { Adopted, ReplyJob, ReplyLeases } from '../store.js';

interface Replies {
  /** The reply holding the lease: running, or about to start; and who asked for it. */
  running: string | undefined;
  asker?: string | undefined;
  readonly queue: ReplyJob[];
}

export class MemoryReplies implements ReplyLeases {
  /** Only conversations with a reply running or queued: an entry goes when both are done. */
  protected readonly byConversation = new Map<string, Replies>();

  constructor(private readonly maxQueued: number) {}

  /** Take the lease for `job`, or queue it; false when the queue is full. Synchronous, for submit's one atomic step. */
  reserve(conversationId: string, job: ReplyJob): { start: boolean } | undefined {
    const r = this.byConversation.get(conversationId);
    if (!r) {
      this.byConversation.set(conversationId, { running: job.replyId, asker: job.user.id, queue: [] });
      return { start: true };
    }
    if (r.running === undefined) {
      r.running = job.replyId;
      r.asker = job.user.id;
      return { start: true };
    }
    if (r.queue.length >= this.maxQueued) return undefined;
    r.queue.push(job);
    return { start: false };
  }

  /** Take back a reservation whose message could not be written. */
  undo(conversationId: string, replyId: string): void {
    const r = this.byConversation.get(conversationId);
    if (!r) return;
    if (r.running === replyId) r.running = undefined;
    const at = r.queue.findIndex((j) => j.replyId === replyId);
    if (at >= 0) r.queue.splice(at, 1);
    if (r.running === undefined && r.queue.length === 0) this.byConversation.delete(conversationId);
  }

  async claimIdle(conversationId: string, job: ReplyJob): Promise<boolean> {
    if (this.byConversation.has(conversationId)) return false;
    this.byConversation.set(conversationId, { running: job.replyId, asker: job.user.id, queue: [] });
    return true;
  }

  async next(conversationId: string, endedReplyId: string): Promise<ReplyJob | undefined> {
    const r = this.byConversation.get(conversationId);
    if (r?.running !== endedReplyId) return undefined;
    const next = r.queue.shift();
    if (next) {
      r.running = next.replyId;
      r.asker = next.user.id;
    }
    else this.byConversation.delete(conversationId);
    return next;
  }

  async removeQueued(conversationId: string, replyId: string): Promise<ReplyJob | undefined> {
    const queue = this.byConversation.get(conversationId)?.queue;
    const at = queue?.findIndex((r) => r.replyId === replyId) ?? -1;
    return at >= 0 ? queue!.splice(at, 1)[0] : undefined;
  }

  async clearQueue(conversationId: string): Promise<ReplyJob[]> {
    return this.byConversation.get(conversationId)?.queue.splice(0) ?? [];
  }

  async asker(conversationId: string, replyId: string): Promise<string | undefined> {
    const r = this.byConversation.get(conversationId);
    if (r?.running === replyId) return r.asker;
    return r?.queue.find((j) => j.replyId === replyId)?.user.id;
  }

  async state(conversationId: string): Promise<{ running: string | undefined; queued: number }> {
    const r = this.byConversation.get(conversationId);
    return { running: r?.running, queued: r?.queue.length ?? 0 };
  }

  async renew(): Promise<void> {}

  /** A deleted conversation's lease and queue go with it. */
  forget(conversationId: string): void {
    this.byConversation.delete(conversationId);
  }

  /** One process: nothing is ever left behind by another. */
  async adopt(_conversationId: string): Promise<Adopted | undefined> {
    return undefined;
  }
}
