// The Redis usage ledger: sorted sets scored by time, one for every entry and
// one per user, written by the append script with the reply end they bill.
// Read here a page at a time, so a long period never arrives in one piece.
import type { Redis } from 'ioredis';
import { LedgerEntry, type LedgerQuery, type StoreLimits, type UsageLedger } from '../store.js';
import type { Keys } from './keys.js';

const PAGE = 1_000;

export class RedisLedger implements UsageLedger {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly limits: Pick<StoreLimits, 'ledgerRetentionMs'>,
  ) {}

  async read(query: LedgerQuery, page: (entries: LedgerEntry[]) => void): Promise<void> {
    const key = query.userId === undefined ? this.keys.ledger : this.keys.ledgerOf(query.userId);
    // Entries past their retention may linger until the next write trims them; they are not read.
    const from = Math.max(query.from, Date.now() - this.limits.ledgerRetentionMs);
    for (let offset = 0; ; offset += PAGE) {
      const found = await this.redis.zrangebyscore(key, from, `(${query.to}`, 'LIMIT', offset, PAGE);
      if (found.length) page(found.map((json) => LedgerEntry.parse(JSON.parse(json))));
      if (found.length < PAGE) return;
    }
  }
}
