// The usage ledger of the embedded store: entries are written by the journal
// with the reply end they bill; read here a page at a time, by time (and user).
import { z } from 'zod';
import { LedgerEntry, type LedgerQuery, type StoreLimits, type UsageLedger } from '../store.js';
import type { Db } from './db.js';

const PAGE = 1_000;
const Row = z.object({ at: z.number(), replyId: z.string(), json: z.string() });

export class SqliteLedger implements UsageLedger {
  private readonly sql;

  constructor(
    db: Db,
    private readonly limits: Pick<StoreLimits, 'ledgerRetentionMs'>,
  ) {
    // Paged by (at, reply_id), so a page never skips or repeats an entry.
    this.sql = {
      all: db.prepare('SELECT at, reply_id AS replyId, json FROM ledger WHERE at < @to AND (at > @at OR (at = @at AND reply_id > @replyId)) ORDER BY at, reply_id LIMIT @limit'),
      user: db.prepare('SELECT at, reply_id AS replyId, json FROM ledger WHERE user_id = @userId AND at < @to AND (at > @at OR (at = @at AND reply_id > @replyId)) ORDER BY at, reply_id LIMIT @limit'),
    };
  }

  async read(query: LedgerQuery, page: (entries: LedgerEntry[]) => void): Promise<void> {
    const from = Math.max(query.from, Date.now() - this.limits.ledgerRetentionMs);
    let after = { at: from - 1, replyId: '\uffff' };
    for (;;) {
      const params = { to: query.to, at: after.at, replyId: after.replyId, limit: PAGE, ...(query.userId !== undefined ? { userId: query.userId } : {}) };
      const rows = z.array(Row).parse(query.userId === undefined ? this.sql.all.all(params) : this.sql.user.all(params));
      if (rows.length) page(rows.map((r) => LedgerEntry.parse(JSON.parse(r.json))));
      if (rows.length < PAGE) return;
      after = rows.at(-1)!;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
