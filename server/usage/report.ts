// A user's own usage, from the ledger: since midnight UTC and in the current
// quota window (the window TOKEN_QUOTA counts in), with the quotas that apply.
// The cost quota is judged from the same numbers.
import type { ServerFrameOf } from '../../shared/protocol.js';
import type { UsageLedger } from '../backend/store.js';
import { quotaWindow } from '../session/limits.js';
import { userTotals } from './totals.js';

export interface QuotaSettings {
  tokenQuota: number;
  costQuotaUsd: number;
  windowMs: number;
}

const DAY_MS = 24 * 3_600_000;

export class UsageReport {
  constructor(
    private readonly ledger: UsageLedger,
    private readonly quotas: QuotaSettings,
  ) {}

  async of(userId: string, now = Date.now()): Promise<Omit<ServerFrameOf<'usage'>, 'type' | 'ref'>> {
    const { tokenQuota, costQuotaUsd, windowMs } = this.quotas;
    const startsAt = quotaWindow(now, windowMs) * windowMs;
    const midnight = Math.floor(now / DAY_MS) * DAY_MS;
    const [today, window] = await Promise.all([userTotals(this.ledger, userId, midnight, now + 1), userTotals(this.ledger, userId, startsAt, now + 1)]);
    return {
      today,
      window: { ...window, startsAt, endsAt: startsAt + windowMs, ...(tokenQuota ? { tokenQuota } : {}), ...(costQuotaUsd ? { costQuotaUsd } : {}) },
    };
  }

  /** Has the user spent their cost quota in this window? Judged at the start of each reply, from replies that have ended. */
  async overCostQuota(userId: string, now = Date.now()): Promise<boolean> {
    const { costQuotaUsd, windowMs } = this.quotas;
    if (!costQuotaUsd) return false;
    const startsAt = quotaWindow(now, windowMs) * windowMs;
    return (await userTotals(this.ledger, userId, startsAt, now + 1)).costUsd >= costQuotaUsd;
  }
}
