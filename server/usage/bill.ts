// A reply's line in the usage ledger, built the same way however the reply
// ended: run to its end, cancelled, failed, dropped from the queue, or ended
// for a node that was lost. Cost at the model table's prices, from the
// provider's count or the relay's estimate alike.
import type { FinishReason, ReplyError, Usage } from '../../shared/protocol.js';
import type { LedgerEntry } from '../backend/store.js';
import type { Metrics } from '../metrics.js';
import type { Upstreams } from '../upstream/router.js';

export interface Billed {
  conversationId: string;
  replyId: string;
  userId: string;
  keyId?: string | undefined;
  /** The model that answered (or was asked, when none did). */
  model: string;
}

export interface Ending {
  finishReason: FinishReason;
  usage?: Usage | undefined;
  error?: ReplyError | undefined;
}

const NOTHING: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, source: 'estimated' };

export function billFor(upstreams: Upstreams, reply: Billed, end: Ending, at = Date.now()): LedgerEntry {
  const usage = end.usage ?? NOTHING;
  const costUsd = upstreams.costOf(reply.model, usage);
  return {
    replyId: reply.replyId,
    conversationId: reply.conversationId,
    userId: reply.userId,
    ...(reply.keyId ? { keyId: reply.keyId } : {}),
    model: reply.model,
    dialect: upstreams.dialectName(reply.model),
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    ...(usage.cachedTokens !== undefined ? { cachedTokens: usage.cachedTokens } : {}),
    ...(usage.reasoningTokens !== undefined ? { reasoningTokens: usage.reasoningTokens } : {}),
    source: usage.source,
    finishReason: end.finishReason,
    ...(end.error ? { errorCode: end.error.code } : {}),
    ...(costUsd !== undefined ? { costUsd } : {}),
    at,
  };
}

/** The metrics of a bill that was written. */
export function countBill(metrics: Metrics, bill: LedgerEntry): void {
  const { model, source } = bill;
  metrics.usageTokens.inc({ model, source, kind: 'prompt' }, bill.promptTokens);
  metrics.usageTokens.inc({ model, source, kind: 'completion' }, bill.completionTokens);
  if (bill.costUsd !== undefined) metrics.usageCost.inc({ model, source }, bill.costUsd);
}
