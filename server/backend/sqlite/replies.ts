// The reply lease and queue of the embedded store: the in-memory ones, with
// every job that asked to run kept on disk until its reply ends (the journal
// removes it in the same write as the reply's end). After a
// restart, a conversation's first job is the reply that was running when the
// process stopped (ended as interrupted by whoever adopts the conversation)
// and the rest are its queue, which then runs.
import { z } from 'zod';
import { ReplyJob } from '../store.js';
import { MemoryReplies } from '../memory/replies.js';
import type { Db } from './db.js';

const Row = z.object({ conversation: z.string(), job: z.string() });

export class SqliteReplies extends MemoryReplies {
  /** Replies that were running when the process stopped, by conversation, until adopted. */
  private readonly interrupted = new Map<string, string>();
  private position = Date.now();
  private readonly sql;

  constructor(
    private readonly db: Db,
    maxQueued: number,
  ) {
    super(maxQueued);
    this.sql = {
      all: db.prepare('SELECT conversation, job FROM replies ORDER BY conversation, position'),
      insert: db.prepare('INSERT OR REPLACE INTO replies (conversation, reply_id, position, job) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM replies WHERE conversation = ? AND reply_id = ?'),
    };
    this.restore();
  }

  private restore(): void {
    const byConversation = new Map<string, ReplyJob[]>();
    for (const row of z.array(Row).parse(this.sql.all.all())) {
      const jobs = byConversation.get(row.conversation) ?? [];
      jobs.push(ReplyJob.parse(JSON.parse(row.job)));
      byConversation.set(row.conversation, jobs);
    }
    for (const [conversationId, [first, ...queue]] of byConversation) {
      this.interrupted.set(conversationId, first!.replyId);
      this.byConversation.set(conversationId, { running: undefined, queue });
    }
  }

  /** Conversations left with a reply running or queued by a process that stopped. */
  recoverable(): string[] {
    return [...this.interrupted.keys()];
  }

  override reserve(conversationId: string, job: ReplyJob): { start: boolean } | undefined {
    const reserved = super.reserve(conversationId, job);
    // Inside submit's transaction: the job is kept with its message or not at all.
    if (reserved) this.sql.insert.run(conversationId, job.replyId, this.position++, JSON.stringify(job));
    return reserved;
  }

  override async removeQueued(conversationId: string, replyId: string): Promise<ReplyJob | undefined> {
    const removed = await super.removeQueued(conversationId, replyId);
    if (removed) this.sql.remove.run(conversationId, replyId);
    return removed;
  }

  override async clearQueue(conversationId: string): Promise<ReplyJob[]> {
    const cleared = await super.clearQueue(conversationId);
    for (const job of cleared) this.sql.remove.run(conversationId, job.replyId);
    return cleared;
  }

  /** The interrupted reply first (to be ended), then the queue, one job at a time through `next`. */
  override async adopt(conversationId: string): Promise<{ orphan: string } | undefined> {
    const orphan = this.interrupted.get(conversationId);
    if (orphan === undefined) return undefined;
    this.interrupted.delete(conversationId);
    const r = this.byConversation.get(conversationId);
    if (r) r.running = orphan;
    else this.byConversation.set(conversationId, { running: orphan, queue: [] });
    return { orphan };
  }
}
