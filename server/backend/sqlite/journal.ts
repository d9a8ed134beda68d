// The event log on disk, beneath the in-memory log (server/backend/memory/log.ts).
// A message, a tool result and a reply's end (with its bill) are committed
// before the log takes them, so nothing acknowledged is lost to a crash; a
// reply's start and deltas are batched (every FLUSH_MS, or PENDING_MAX of
// them), so a crash loses at most the unwritten tail of the replies then
// streaming. A conversation read back with a reply in flight, or with a hole
// in its log, may have lost events its members saw: it starts a new epoch, so
// a resuming member gets a clean reset rather than a gap.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConversationSettings, HistoryMessage } from '../../../shared/protocol.js';
import { RelayError } from '../../errors.js';
import { replayReply, type HistoryEntry } from '../../history/fold.js';
import { leafOf, linkLegacy } from '../../history/branches.js';
import type { Logger } from '../../log.js';
import type { Appended, LoadedConversation, LogJournal } from '../memory/log.js';
import type { TreeState } from '../../history/changes.js';
import { CLIENT_IDS_KEPT, parseEvent, type ReplyJob, type StoredEvent } from '../store.js';
import { describeWriteFailure, transactor, type Atomically, type Db } from './db.js';
import { packRun, unpackRun } from './runs.js';

/** How long a reply's events may wait to be written. */
const FLUSH_MS = 250;
/** Events that wait at most; past this they are written at once. */
const PENDING_MAX = 20_000;

// Rows as this store wrote them, checked on the way back all the same.
const ConversationRow = z.object({ seq: z.number(), epoch: z.string(), bytes: z.number() });
const EventRow = z.object({ seq: z.number(), lastSeq: z.number(), at: z.number(), offset: z.number(), replyId: z.string().nullable(), json: z.string() });
const HistoryRow = z.object({ startSeq: z.number(), json: z.string() });
const ClientIdRow = z.object({ clientId: z.string(), json: z.string() });
const StateRow = z.object({ leaf: z.string().nullable(), settings: z.string(), owner: z.string().nullable(), roles: z.string() });
const Roles = z.record(z.string(), z.enum(['owner', 'member', 'viewer', 'removed']));

export class SqliteJournal implements LogJournal {
  private pending: Appended[] = [];
  /** Jobs a submit reserved, written in one transaction with the message they answer. */
  private jobs: Array<{ conversationId: string; job: ReplyJob }> = [];
  private position = Date.now();
  /** Conversations whose retained events before a seq are to be dropped, with the next write. */
  private trims = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Why the last write failed, while writing fails: a reply's next event ends it with this. */
  private failure: string | undefined;
  private readonly sql;
  private readonly atomically: Atomically;

  constructor(
    db: Db,
    private readonly log: Logger,
  ) {
    this.atomically = transactor(db);
    this.sql = {
      conversation: db.prepare('SELECT seq, epoch, bytes FROM conversations WHERE id = ?'),
      events: db.prepare('SELECT seq, last_seq AS lastSeq, at, offset, reply_id AS replyId, json FROM events WHERE conversation = ? ORDER BY seq'),
      history: db.prepare('SELECT start_seq AS startSeq, json FROM history WHERE conversation = ? ORDER BY start_seq'),
      clientIds: db.prepare('SELECT client_id AS clientId, json FROM client_ids WHERE conversation = ? ORDER BY seq'),
      newEpoch: db.prepare('UPDATE conversations SET epoch = ?, seq = ? WHERE id = ?'),
      dropEvents: db.prepare('DELETE FROM events WHERE conversation = ? AND last_seq < ?'),
      insertEvents: db.prepare('INSERT OR REPLACE INTO events (conversation, seq, last_seq, at, offset, reply_id, json) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      upsertConversation: db.prepare(
        'INSERT INTO conversations (id, seq, epoch, bytes, last_active) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch, bytes = excluded.bytes, last_active = excluded.last_active',
      ),
      insertHistory: db.prepare('INSERT OR REPLACE INTO history (conversation, start_seq, json) VALUES (?, ?, ?)'),
      pruneHistory: db.prepare('DELETE FROM history WHERE conversation = ? AND start_seq = ?'),
      state: db.prepare('SELECT leaf, settings, owner, roles FROM conversation_state WHERE conversation = ?'),
      upsertState: db.prepare('INSERT OR REPLACE INTO conversation_state (conversation, leaf, settings, owner, roles) VALUES (?, ?, ?, ?, ?)'),
      dropClientId: db.prepare('DELETE FROM client_ids WHERE conversation = ? AND client_id = ?'),
      insertClientId: db.prepare('INSERT OR REPLACE INTO client_ids (conversation, client_id, seq, json) VALUES (?, ?, ?, ?)'),
      capClientIds: db.prepare('DELETE FROM client_ids WHERE conversation = ? AND seq < (SELECT seq FROM client_ids WHERE conversation = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)'),
      insertBill: db.prepare('INSERT OR IGNORE INTO ledger (reply_id, user_id, at, json) VALUES (?, ?, ?, ?)'),
      replyEnded: db.prepare('DELETE FROM replies WHERE conversation = ? AND reply_id = ?'),
      insertJob: db.prepare('INSERT OR REPLACE INTO replies (conversation, reply_id, position, job) VALUES (?, ?, ?, ?)'),
      hasJobs: db.prepare('SELECT 1 FROM replies WHERE conversation = ? LIMIT 1').pluck(),
      erase: ['events', 'history', 'client_ids', 'conversation_state', 'replies'].map((table) => db.prepare(`DELETE FROM ${table} WHERE conversation = ?`)),
      eraseConversation: db.prepare('DELETE FROM conversations WHERE id = ?'),
      markDeleted: db.prepare('INSERT OR REPLACE INTO deleted_conversations (id, at) VALUES (?, ?)'),
      isDeleted: db.prepare('SELECT 1 FROM deleted_conversations WHERE id = ?').pluck(),
    };
  }

  load(conversationId: string): LoadedConversation | undefined {
    const found = this.sql.conversation.get(conversationId);
    if (found === undefined) return undefined;
    const row = ConversationRow.parse(found);
    let log = z
      .array(EventRow)
      .parse(this.sql.events.all(conversationId))
      .flatMap((row) => unpackRun(conversationId, row));
    let history = z
      .array(HistoryRow)
      .parse(this.sql.history.all(conversationId))
      .map((h): HistoryEntry => ({ startSeq: h.startSeq, message: HistoryMessage.parse(JSON.parse(h.json)) }));
    const stateRow = this.sql.state.get(conversationId);
    let state: TreeState;
    if (stateRow === undefined) {
      history = this.linkLegacy(conversationId, history);
      state = { leaf: leafOf(history, undefined), settings: {}, owner: undefined, roles: {} };
    } else {
      const { leaf, settings, owner, roles } = StateRow.parse(stateRow);
      state = { leaf: leaf ?? undefined, settings: ConversationSettings.parse(JSON.parse(settings)), owner: owner ?? undefined, roles: Roles.parse(JSON.parse(roles)) };
    }
    // Jobs on disk when a conversation is read back: the process that ran them stopped without ending them.
    const interrupted = this.sql.hasJobs.get(conversationId) !== undefined;
    // A reply in flight that no job will end (its end could not be written) is not shown as streaming.
    const inFlight = interrupted ? replayReply(log.map((e) => ({ event: parseEvent(e.json), at: e.at }))) : undefined;
    const whole = log.every((e, i) => i === 0 || e.seq === log[i - 1]!.seq + 1) && (log.length === 0 || log.at(-1)!.seq === row.seq);
    let { epoch, seq } = row;
    if (interrupted || !whole) {
      // Members may have seen events that never reached the disk (at most PENDING_MAX of them, a reply's
      // start among them): a new epoch, and seqs past any of theirs, so that a resume from one of them is a
      // reset, never a gap. The old events go with the next write (the interrupted reply's end): until then
      // another crash still finds the partial text.
      epoch = randomUUID();
      seq += PENDING_MAX + 1;
      this.sql.newEpoch.run(epoch, seq, conversationId);
      this.trims.set(conversationId, seq + 1);
      log = [];
      this.log.warn({ conversationId, replyInFlight: inFlight?.replyId }, 'conversation read back after an unclean stop: a new epoch');
    }
    const clientIds = z.array(ClientIdRow).parse(this.sql.clientIds.all(conversationId)).map(
      ({ clientId, json }): [string, StoredEvent] => [clientId, { json, event: parseEvent(json), epoch }],
    );
    return { seq, epoch, end: row.bytes, log, history, inFlight, clientIds, state };
  }

  /** A conversation written before messages had parents: each is linked to the one before it, on disk too, once. */
  private linkLegacy(conversationId: string, history: HistoryEntry[]): HistoryEntry[] {
    const linked = linkLegacy(history);
    this.atomically(() => {
      for (const h of linked) this.sql.insertHistory.run(conversationId, h.startSeq, JSON.stringify(h.message));
      this.writeState(conversationId, { leaf: leafOf(linked, undefined), settings: {}, owner: undefined, roles: {} });
    });
    return linked;
  }

  private writeState(conversationId: string, state: TreeState): void {
    this.sql.upsertState.run(conversationId, state.leaf ?? null, JSON.stringify(state.settings), state.owner ?? null, JSON.stringify(state.roles));
  }

  /** A job that asked to run with the message about to be appended: kept with it, or not at all. */
  reserved(conversationId: string, job: ReplyJob): void {
    this.jobs.push({ conversationId, job });
  }

  /** A job that runs with no message (a regenerate): written now, in a transaction of its own. */
  keepJob(conversationId: string, job: ReplyJob): void {
    try {
      this.atomically(() => this.sql.insertJob.run(conversationId, job.replyId, this.position++, JSON.stringify(job)));
    } catch (err) {
      this.failed(err);
      throw new RelayError('internal', this.failure!);
    }
  }

  /** A reservation taken back (its message was never written). */
  unreserved(replyId: string): void {
    this.jobs = this.jobs.filter((j) => j.job.replyId !== replyId);
  }

  /**
   * Its own transaction, never one inside another: when this returns the
   * change is committed, and only then does the in-memory log take it.
   */
  appended(change: Appended): void {
    if (change.type === 'reply.start' || change.type === 'reply.delta') return this.later(change);
    const jobs = this.jobs;
    this.jobs = [];
    try {
      this.atomically(() => {
        this.writePending();
        this.write(change);
        for (const { conversationId, job } of jobs) this.sql.insertJob.run(conversationId, job.replyId, this.position++, JSON.stringify(job));
      });
      this.failure = undefined;
    } catch (err) {
      this.failed(err);
      // A reply's end still reaches every member: its reply stays unfinished on disk, and is ended again after a restart.
      if (change.type !== 'reply.end') throw new RelayError('internal', this.failure!);
    }
  }

  /** Everything of the conversation goes now, with what still waited to be written of it. */
  deleted(conversationId: string): void {
    this.pending = this.pending.filter((c) => c.conversationId !== conversationId);
    this.jobs = this.jobs.filter((j) => j.conversationId !== conversationId);
    this.trims.delete(conversationId);
    this.atomically(() => {
      for (const erase of this.sql.erase) erase.run(conversationId);
      this.sql.eraseConversation.run(conversationId);
      this.sql.markDeleted.run(conversationId, Date.now());
    });
  }

  /** A user's words erased: in one transaction, with what still waited to be written before `firstKept` dropped first. */
  erased(conversationId: string, change: { entries: HistoryEntry[]; clientIds: string[]; firstKept: number }): void {
    this.pending = this.pending.filter((c) => c.conversationId !== conversationId || c.entry.seq >= change.firstKept);
    this.atomically(() => {
      this.writePending();
      for (const { startSeq, message } of change.entries) this.sql.insertHistory.run(conversationId, startSeq, JSON.stringify(message));
      for (const id of change.clientIds) this.sql.dropClientId.run(conversationId, id);
      this.sql.dropEvents.run(conversationId, change.firstKept);
    });
  }

  isDeleted(conversationId: string): boolean {
    return this.sql.isDeleted.get(conversationId) !== undefined;
  }

  trimmed(conversationId: string, firstSeq: number): void {
    this.trims.set(conversationId, firstSeq);
  }

  /** Write what waits now (its time has come, the batch is full, or the store closes). */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 && this.trims.size === 0) return;
    try {
      this.atomically(() => this.writePending());
      this.failure = undefined;
    } catch (err) {
      this.failed(err);
    }
  }

  close(): void {
    this.flush();
  }

  private later(change: Appended): void {
    // A store that cannot write ends the replies that stream into it, with the reason.
    if (this.failure) throw new RelayError('internal', this.failure);
    this.pending.push(change);
    if (this.pending.length >= PENDING_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private failed(err: unknown): void {
    this.failure = describeWriteFailure(err);
    // What waited is lost with the failed write; the conversations it belonged to start a new epoch when read back.
    this.pending = [];
    this.log.error({ err }, 'writing to the data directory failed');
  }

  private writePending(): void {
    const pending = this.pending;
    this.pending = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    // One row per conversation per batch: its events in a run, and its newest state.
    const runs = new Map<string, Appended[]>();
    for (const change of pending) {
      const run = runs.get(change.conversationId);
      if (run) run.push(change);
      else runs.set(change.conversationId, [change]);
    }
    for (const run of runs.values()) {
      this.insertRun(run);
      this.upsertConversation(run.at(-1)!);
      const state = run.findLast((c) => c.state)?.state;
      if (state) this.writeState(run[0]!.conversationId, state);
    }
    for (const [conversationId, firstSeq] of this.trims) this.sql.dropEvents.run(conversationId, firstSeq);
    this.trims.clear();
  }

  private write(change: Appended): void {
    const { conversationId, entry, history, clientId, bill, state, pruned } = change;
    this.insertRun([change]);
    this.upsertConversation(change);
    if (history) this.sql.insertHistory.run(conversationId, history.startSeq, JSON.stringify(history.message));
    for (const startSeq of pruned ?? []) this.sql.pruneHistory.run(conversationId, startSeq);
    if (state) this.writeState(conversationId, state);
    if (clientId) {
      this.sql.insertClientId.run(conversationId, clientId, entry.seq, entry.json);
      this.sql.capClientIds.run(conversationId, conversationId, CLIENT_IDS_KEPT - 1);
    }
    if (bill) this.sql.insertBill.run(bill.replyId, bill.userId, bill.at, JSON.stringify(bill));
    // With its end, a reply no longer waits to run: after a restart only unfinished ones are ended again.
    if (change.type === 'reply.end' && change.replyId) this.sql.replyEnded.run(conversationId, change.replyId);
  }

  /** Consecutive events of one conversation, as one row. */
  private insertRun(run: Appended[]): void {
    const { conversationId, replyId: reply, entry: first } = run[0]!;
    const { replyId, text } = packRun(conversationId, reply, run.map((c) => c.entry));
    this.sql.insertEvents.run(conversationId, first.seq, run.at(-1)!.entry.seq, first.at, first.offset, replyId, text);
  }

  private upsertConversation({ conversationId, entry, epoch }: Appended): void {
    this.sql.upsertConversation.run(conversationId, entry.seq, epoch, entry.offset + Buffer.byteLength(entry.json), entry.at);
  }
}
