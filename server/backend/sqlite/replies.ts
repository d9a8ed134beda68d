// The reply lease and queue of the embedded store: the in-memory ones, with
// every job that asked to run kept on disk until its reply ends (the journal
// removes it in the same write as the reply's end). After a restart, a
// conversation's first job is the reply that was running when the process
// stopped (ended as interrupted, or run if it never started) and the rest
// are its queue, which then runs.
import { z } from 'zod';
import { ReplyJob, type Adopted } from '../store.js';
import { MemoryReplies } from '../memory/replies.js';
import type { Db } from './db.js';
import type { SqliteJournal } from './journal.js';

const Row = z.object({ conversation: z.string(), job: z.string() });

export class SqliteReplies extends MemoryReplies {
  /** Replies that were running when the process stopped, by conversation, until adopted. */
  private readonly interrupted = new Map<string, ReplyJob>();
  private readonly sql;

  constructor(
    db: Db,
    private readonly journal: SqliteJournal,
    maxQueued: number,
    /** The reply a conversation's log shows streaming, if any. */
    private readonly streaming: (conversationId: string) => string | undefined,
  ) {
    super(maxQueued);
    this.sql = {
      all: db.prepare('SELECT conversation, job FROM replies ORDER BY conversation, position'),
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
      this.interrupted.set(conversationId, first!);
      this.byConversation.set(conversationId, { running: undefined, queue });
    }
  }

  /** Conversations left with a reply running or queued by a process that stopped. */
  recoverable(): string[] {
    return [...this.interrupted.keys()];
  }

  override reserve(conversationId: string, job: ReplyJob): { start: boolean } | undefined {
    const reserved = super.reserve(conversationId, job);
    // Written by the journal with the message that asks for it: kept with it, or not at all.
    if (reserved) this.journal.reserved(conversationId, job);
    return reserved;
  }

  /** On disk at once: no message is written with it. */
  override async claimIdle(conversationId: string, job: ReplyJob): Promise<boolean> {
    if (!(await super.claimIdle(conversationId, job))) return false;
    try {
      this.journal.keepJob(conversationId, job);
    } catch (err) {
      super.undo(conversationId, job.replyId);
      throw err;
    }
    return true;
  }

  override forget(conversationId: string): void {
    super.forget(conversationId);
    this.interrupted.delete(conversationId);
  }

  override undo(conversationId: string, replyId: string): void {
    super.undo(conversationId, replyId);
    this.journal.unreserved(replyId);
  }

  /** Off the disk first: a removal that cannot be written leaves the job queued everywhere (the cancel fails). */
  override async removeQueued(conversationId: string, replyId: string): Promise<ReplyJob | undefined> {
    if (!this.byConversation.get(conversationId)?.queue.some((j) => j.replyId === replyId)) return undefined;
    this.sql.remove.run(conversationId, replyId);
    return super.removeQueued(conversationId, replyId);
  }

  override async clearQueue(conversationId: string): Promise<ReplyJob[]> {
    for (const job of this.byConversation.get(conversationId)?.queue ?? []) this.sql.remove.run(conversationId, job.replyId);
    return super.clearQueue(conversationId);
  }

  /**
   * The first job a stopped process left: ended as interrupted if its reply
   * had started (the log shows it streaming), else it runs now, as it never
   * did; the rest of the queue follows through `next`.
   */
  override async adopt(conversationId: string): Promise<Adopted | undefined> {
    const asked = this.interrupted.get(conversationId);
    if (asked === undefined) return undefined;
    this.interrupted.delete(conversationId);
    const r = this.byConversation.get(conversationId);
    if (r) Object.assign(r, { running: asked.replyId, asker: asked.user.id });
    else this.byConversation.set(conversationId, { running: asked.replyId, asker: asked.user.id, queue: [] });
    return this.streaming(conversationId) === asked.replyId ? { orphan: asked.replyId, asked } : { job: asked };
  }
}
