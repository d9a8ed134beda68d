// Sums over the usage ledger: one user's totals (the `usage` frame, the cost
// quota) and totals grouped by user, conversation or model (GET /admin/usage),
// as JSON rows or CSV. Read a page at a time, summed as the pages arrive.
import type { UsageTotals } from '../../shared/protocol.js';
import type { LedgerEntry, LedgerQuery, UsageLedger } from '../backend/store.js';

export const GROUPS = ['user', 'conversation', 'model'] as const;
export type GroupBy = (typeof GROUPS)[number];

/** One group's totals, with what the bare totals leave out. */
export interface UsageRow extends UsageTotals {
  key: string;
  cachedTokens: number;
  reasoningTokens: number;
  /** Replies whose tokens the relay counted itself (the upstream gave no usage). */
  estimatedReplies: number;
  /** Replies by how they ended. */
  finishReasons: Record<string, number>;
}

function emptyRow(key: string): UsageRow {
  return { key, replies: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, cachedTokens: 0, reasoningTokens: 0, estimatedReplies: 0, finishReasons: {} };
}

function add(row: UsageRow, e: LedgerEntry): void {
  row.replies++;
  row.promptTokens += e.promptTokens;
  row.completionTokens += e.completionTokens;
  row.costUsd += e.costUsd ?? 0;
  row.cachedTokens += e.cachedTokens ?? 0;
  row.reasoningTokens += e.reasoningTokens ?? 0;
  if (e.source === 'estimated') row.estimatedReplies++;
  row.finishReasons[e.finishReason] = (row.finishReasons[e.finishReason] ?? 0) + 1;
}

const keyOf: Record<GroupBy, (e: LedgerEntry) => string> = {
  user: (e) => e.userId,
  conversation: (e) => e.conversationId,
  model: (e) => e.model,
};

/** Totals per group, the largest spender first (by cost, then tokens), and the grand total. */
export async function groupedTotals(ledger: UsageLedger, query: LedgerQuery, groupBy: GroupBy): Promise<{ rows: UsageRow[]; total: UsageRow }> {
  const rows = new Map<string, UsageRow>();
  const total = emptyRow('total');
  await ledger.read(query, (entries) => {
    for (const e of entries) {
      const key = keyOf[groupBy](e);
      let row = rows.get(key);
      if (!row) rows.set(key, (row = emptyRow(key)));
      add(row, e);
      add(total, e);
    }
  });
  const sorted = [...rows.values()].sort((a, b) => b.costUsd - a.costUsd || b.promptTokens + b.completionTokens - (a.promptTokens + a.completionTokens));
  return { rows: sorted, total };
}

/** One user's totals over a period. */
export async function userTotals(ledger: UsageLedger, userId: string, from: number, to: number): Promise<UsageTotals> {
  const { total } = await groupedTotals(ledger, { from, to, userId }, 'user');
  return { replies: total.replies, promptTokens: total.promptTokens, completionTokens: total.completionTokens, costUsd: total.costUsd };
}

const CSV_COLUMNS = ['replies', 'promptTokens', 'completionTokens', 'cachedTokens', 'reasoningTokens', 'costUsd', 'estimatedReplies'] as const;

/** A cell as RFC 4180 has it, and never a formula a spreadsheet would run. */
function cell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function toCsv(groupBy: GroupBy, rows: UsageRow[]): string {
  const lines = [[groupBy, ...CSV_COLUMNS].join(',')];
  for (const row of rows) lines.push([cell(row.key), ...CSV_COLUMNS.map((c) => String(row[c]))].join(','));
  return `${lines.join('\r\n')}\r\n`;
}
