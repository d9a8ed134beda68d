// The in-memory usage ledger: entries in the order they were written, kept for
// the retention period and up to a count, the oldest dropped first.
import type { LedgerEntry, LedgerQuery, StoreLimits, UsageLedger } from '../store.js';

/** Entries handed over per page; the event loop gets a turn between pages. */
const PAGE = 1_000;

function fileUnder(byUser: Map<string, LedgerEntry[]>, entry: LedgerEntry): void {
  const mine = byUser.get(entry.userId);
  if (mine) mine.push(entry);
  else byUser.set(entry.userId, [entry]);
}

export class MemoryLedger implements UsageLedger {
  private entries: LedgerEntry[] = [];
  /** Each user's entries, so that a user's own totals (the usage frame, the cost quota) read only theirs. */
  private readonly byUser = new Map<string, LedgerEntry[]>();
  private sinceSweep = 0;

  constructor(private readonly limits: Pick<StoreLimits, 'ledgerRetentionMs' | 'ledgerMaxEntries'>) {}

  /** Synchronous, so that the log writes an end and its bill in one step. */
  add(entry: LedgerEntry): void {
    this.entries.push(entry);
    fileUnder(this.byUser, entry);
    // Swept every so many writes (reads skip what has expired meanwhile), so that a full ledger
    // does not copy itself on every write; it may hold one page more than its bound.
    if (++this.sinceSweep < PAGE && this.entries.length <= this.limits.ledgerMaxEntries + PAGE) return;
    this.sinceSweep = 0;
    const keepFrom = entry.at - this.limits.ledgerRetentionMs;
    let drop = Math.max(0, this.entries.length - this.limits.ledgerMaxEntries);
    while (drop < this.entries.length && this.entries[drop]!.at < keepFrom) drop++;
    if (drop === 0) return;
    const dropped = this.entries.slice(0, drop);
    this.entries = this.entries.slice(drop);
    this.forget(dropped);
  }

  /**
   * The dropped entries are the oldest, so the oldest of each of their users:
   * each user's list loses as many from its front (a new array, as reads may
   * hold the old one), and users left with none are gone.
   */
  private forget(dropped: readonly LedgerEntry[]): void {
    const gone = new Map<string, number>();
    for (const e of dropped) gone.set(e.userId, (gone.get(e.userId) ?? 0) + 1);
    for (const [userId, count] of gone) {
      const mine = this.byUser.get(userId) ?? [];
      if (count >= mine.length) this.byUser.delete(userId);
      else this.byUser.set(userId, mine.slice(count));
    }
  }

  async read(query: LedgerQuery, page: (entries: LedgerEntry[]) => void): Promise<void> {
    const keepFrom = Date.now() - this.limits.ledgerRetentionMs;
    const from = Math.max(query.from, keepFrom);
    const matches = (e: LedgerEntry) => e.at >= from && e.at < query.to;
    // The array as it is now: a sweep during the read replaces it rather than shifting it.
    const entries = query.userId === undefined ? this.entries : (this.byUser.get(query.userId) ?? []);
    for (let i = 0; i < entries.length; i += PAGE) {
      const found = entries.slice(i, i + PAGE).filter(matches);
      if (found.length) page(found);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
