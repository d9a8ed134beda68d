// The cost quota (COST_QUOTA_USD per quota window) on top of a backend's user
// limits: a reply may start only while the user's ledger for the window is
// under it. A reply that starts under the quota runs to its end, so a user can
// go over by at most the replies they have in flight.
import { RelayError } from '../errors.js';
import type { UserLimits } from '../session/limits.js';
import type { UsageReport } from './report.js';

export function withCostQuota(limits: UserLimits, report: UsageReport): UserLimits {
  return {
    takeMessage: (userId) => limits.takeMessage(userId),
    async startReply(userId) {
      if (await report.overCostQuota(userId)) throw new RelayError('quota_exceeded', 'the cost quota of this user is used up for now');
      return limits.startReply(userId);
    },
    endReply: (userId) => limits.endReply(userId),
    spend: (userId, tokens) => limits.spend(userId, tokens),
    usersWithReplies: () => limits.usersWithReplies(),
    sweep: () => limits.sweep(),
    close: () => limits.close(),
  };
}
