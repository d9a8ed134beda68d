// The embedded durable store (the default of `npm start`): the in-memory
// store, with everything it holds also kept in SQLite under DATA_DIR, so
// conversations, history, queued replies, API keys and the usage ledger
// survive a restart without Redis. One process per data directory.
import type { Logger } from '../../log.js';
import { MemoryStore } from '../memory/store.js';
import type { AttachmentLimits, StoreLimits } from '../store.js';
import { SqliteApiKeys } from './api-keys.js';
import { SqliteAttachments } from './attachments.js';
import { openDb, usedBytes } from './db.js';
import { SqliteJournal } from './journal.js';
import { SqliteLedger } from './ledger.js';
import { SqliteLists } from './lists.js';
import { SqliteReplies } from './replies.js';
import { Retention, type DataLimits } from './retention.js';

export interface SqliteOptions extends Omit<DataLimits, 'ledgerRetentionMs' | 'ledgerMaxEntries'> {
  dataDir: string;
  /** How often the retention sweep runs. */
  sweepEveryMs: number;
  attachments: AttachmentLimits;
}

export class SqliteStore extends MemoryStore {
  override readonly replies: SqliteReplies;
  readonly attachments: SqliteAttachments;
  private readonly retention: Retention;
  private readonly sweeper: NodeJS.Timeout;
  /** What the database holds: bytes in pages and conversations (the `relay_data_*` metrics). */
  readonly disk: () => { bytes: number; conversations: number };

  constructor(
    limits: StoreLimits,
    opts: SqliteOptions,
    private readonly logger: Logger,
  ) {
    const log = logger;
    const db = openDb(opts.dataDir, opts.maxBytes);
    const journal = new SqliteJournal(db, log);
    const replies = new SqliteReplies(db, journal, limits.maxQueuedReplies, (id) => this.log.inFlightOf(id)?.replyId);
    super(limits, {
      journal,
      replies,
      apiKeys: new SqliteApiKeys(db),
      lists: new SqliteLists(db),
      ledger: new SqliteLedger(db, limits),
      close: async () => {
        clearInterval(this.sweeper);
        journal.close();
        db.close();
      },
    });
    this.replies = replies;
    this.attachments = new SqliteAttachments(db, opts.attachments);
    const count = db.prepare('SELECT count(*) FROM conversations').pluck();
    this.disk = () => ({ bytes: usedBytes(db), conversations: Number(count.get()) });
    this.retention = new Retention(db, { ...opts, ledgerRetentionMs: limits.ledgerRetentionMs, ledgerMaxEntries: limits.ledgerMaxEntries }, (id) => this.log.holds(id), log);
    this.sweeper = setInterval(() => void this.sweep(), opts.sweepEveryMs);
    this.sweeper.unref();
    void this.sweep();
  }

  /** Look at the bounds now (the sweep also runs every DATA_SWEEP_MS); expired attachments go first, so their bytes count no more. */
  sweep(now = Date.now()): Promise<void> {
    try {
      this.attachments.sweep(now);
    } catch (err) {
      this.logger.warn({ err }, 'dropping expired attachments failed');
    }
    return this.retention.sweep(now);
  }

  /** Conversations a stopped process left with replies running or queued: whoever adopts them ends or runs those. */
  recoverable(): string[] {
    return this.replies.recoverable();
  }
}
