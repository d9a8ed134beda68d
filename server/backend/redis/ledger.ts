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
    // Paged by score, not offset: the append script trims the front of the set while this reads.
    let min = from;
    let atMin = new Set<string>();
    for (;;) {
      const raw = await this.redis.zrangebyscore(key, min, `(${query.to}`, 'WITHSCORES', 'LIMIT', 0, PAGE + atMin.size);
      const found: string[] = [];
      let last = min;
      const atLast = new Set<string>();
      for (let i = 0; i < raw.length; i += 2) {
        const json = raw[i]!;
        const score = Number(raw[i + 1]);
        if (score === min && atMin.has(json)) continue;
        found.push(json);
        if (score !== last) atLast.clear();
        last = score;
        atLast.add(json);
      }
      if (found.length) page(found.map((json) => LedgerEntry.parse(JSON.parse(json))));
      if (raw.length < 2 * (PAGE + atMin.size)) return;
      atMin = last === min ? new Set([...atMin, ...atLast]) : atLast;
      min = last;
    }
  }
}
