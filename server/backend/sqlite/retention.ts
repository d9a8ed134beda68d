// The embedded store's bounds, kept by a sweep that never holds the event
// loop for long: usage ledger entries past their age and count; conversations
// idle longer than DATA_RETENTION_DAYS; and, past 80 % of DATA_MAX_BYTES, the
// oldest idle conversations first. Freed pages go back to the file system by
// incremental vacuum, a few at a time. DATA_MAX_BYTES is also a hard cap on
// the file: past it, writes fail as on a full disk.
import type { Logger } from '../../log.js';
import type { StoreLimits } from '../store.js';
import { transactor, usedBytes, type Atomically, type Db } from './db.js';

export interface DataLimits extends Pick<StoreLimits, 'ledgerRetentionMs' | 'ledgerMaxEntries'> {
  maxBytes: number;
  /** Idle conversations older than this are dropped; 0 keeps them (until space runs short). */
  retentionMs: number;
}

/** Deleted conversations remembered (so nothing writes them again), the newest kept: as many as memory keeps. */
const DELETED_KEPT = 10_000;
/** Share of DATA_MAX_BYTES the sweep brings the store back under. */
const TARGET = 0.8;
/** Conversations dropped, or pages vacuumed, per turn of the event loop. */
const BATCH = 20;
const VACUUM_PAGES = 256;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

export class Retention {
  private readonly sql;
  private running: Promise<void> | undefined;
  private readonly atomically: Atomically;

  constructor(
    private readonly db: Db,
    private readonly limits: DataLimits,
    /** Conversations this process holds now (in memory, or with replies): never dropped. */
    private readonly busy: (conversationId: string) => boolean,
    private readonly log: Logger,
  ) {
    this.atomically = transactor(db);
    this.sql = {
      expireLedger: db.prepare('DELETE FROM ledger WHERE at < ?'),
      capLedger: db.prepare('DELETE FROM ledger WHERE reply_id IN (SELECT reply_id FROM ledger ORDER BY at DESC LIMIT -1 OFFSET ?)'),
      idleBefore: db.prepare('SELECT id FROM conversations WHERE last_active < ? ORDER BY last_active LIMIT ? OFFSET ?').pluck(),
      oldest: db.prepare('SELECT id FROM conversations ORDER BY last_active LIMIT ? OFFSET ?').pluck(),
      hasReplies: db.prepare('SELECT 1 FROM replies WHERE conversation = ? LIMIT 1').pluck(),
      drop: ['events', 'history', 'client_ids', 'conversation_state', 'user_conversations'].map((table) => db.prepare(`DELETE FROM ${table} WHERE conversation = ?`)),
      dropConversation: db.prepare('DELETE FROM conversations WHERE id = ?'),
      freePages: db.prepare('PRAGMA freelist_count').pluck(),
      capDeleted: db.prepare('DELETE FROM deleted_conversations WHERE id IN (SELECT id FROM deleted_conversations ORDER BY at DESC LIMIT -1 OFFSET ?)'),
    };
  }

  /** One sweep, after the one running (if any): sweeps never overlap. */
  sweep(now = Date.now()): Promise<void> {
    const next: Promise<void> = (this.running ?? Promise.resolve()).then(() => this.run(now)).finally(() => {
      if (this.running === next) this.running = undefined;
    });
    this.running = next;
    return next;
  }

  private async run(now: number): Promise<void> {
    try {
      this.sql.expireLedger.run(now - this.limits.ledgerRetentionMs);
      this.sql.capLedger.run(this.limits.ledgerMaxEntries);
      this.sql.capDeleted.run(DELETED_KEPT);
      if (this.limits.retentionMs > 0) await this.dropIdleBefore(now - this.limits.retentionMs);
      await this.dropUntilUnder(this.limits.maxBytes * TARGET);
      await this.vacuum();
    } catch (err) {
      this.log.warn({ err }, 'the data retention sweep failed');
    }
  }

  private dropIfIdle(conversationId: string): boolean {
    if (this.busy(conversationId) || this.sql.hasReplies.get(conversationId) !== undefined) return false;
    this.atomically(() => {
      for (const statement of this.sql.drop) statement.run(conversationId);
      this.sql.dropConversation.run(conversationId);
    });
    return true;
  }

  private async dropIdleBefore(cutoff: number): Promise<void> {
    // Past the ones in use, which stay where they are in the order.
    for (let skipped = 0; ; ) {
      const ids = this.sql.idleBefore.all(cutoff, BATCH, skipped).map(String);
      for (const id of ids) if (!this.dropIfIdle(id)) skipped++;
      if (ids.length < BATCH) return;
      await nextTurn();
    }
  }

  private async dropUntilUnder(bytes: number): Promise<void> {
    // Counted as pages in use: a drop frees pages at once, before any vacuum.
    let skipped = 0;
    while (usedBytes(this.db) > bytes) {
      const ids = this.sql.oldest.all(BATCH, skipped).map(String);
      if (ids.length === 0) {
        this.log.warn({ usedBytes: usedBytes(this.db), maxBytes: this.limits.maxBytes }, 'the data directory is near its cap and every conversation in it is in use');
        return;
      }
      for (const id of ids) {
        if (usedBytes(this.db) <= bytes) return;
        if (!this.dropIfIdle(id)) skipped++;
      }
      await nextTurn();
    }
  }

  private async vacuum(): Promise<void> {
    while (Number(this.sql.freePages.get()) > 0) {
      this.db.pragma(`incremental_vacuum(${VACUUM_PAGES})`);
      await nextTurn();
    }
  }
}
