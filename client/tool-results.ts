// Tool results as the app sees them. A result reaches a client three ways: a
// live `tool.result` event, the same event replayed on resume, or a `tool`
// entry in a join snapshot's history. All three become the same ToolResult and
// the same history entry, so it does not matter which one a client saw.
import type { HistoryMessage, ServerFrameOf, User } from '../shared/protocol.js';

export type ToolResultFrame = ServerFrameOf<'tool.result'>;

/** The output of one tool call: from the member who asked, or from the relay (author id `relay`). */
export interface ToolResult {
  /** The reply whose call this answers. */
  readonly replyId: string;
  readonly toolCallId: string;
  readonly output: string;
  /** The tool failed; `output` says how. */
  readonly isError: boolean;
  readonly author: Readonly<User>;
  readonly createdAt: number;
}

export interface RespondOptions {
  /** The tool failed: `output` describes the failure, and the model is told so. */
  isError?: boolean;
}

export function resultFromFrame(e: ToolResultFrame): ToolResult {
  return freeze({ replyId: e.replyId, toolCallId: e.toolCallId, output: e.output, isError: e.isError, author: e.author, createdAt: e.createdAt });
}

/** The result a history `tool` entry holds; undefined for any other entry. */
export function resultFromEntry(m: HistoryMessage): ToolResult | undefined {
  if (m.role !== 'tool' || m.replyId === undefined || m.toolCallId === undefined) return undefined;
  const author = m.author ?? { id: 'relay', name: 'relay' };
  return freeze({ replyId: m.replyId, toolCallId: m.toolCallId, output: m.text, isError: m.isError ?? false, author, createdAt: m.createdAt });
}

/** The results in `history`, or those of one reply. */
export function* resultsIn(history: readonly HistoryMessage[], replyId?: string): Generator<ToolResult> {
  for (const m of history) {
    const r = resultFromEntry(m);
    if (r && (replyId === undefined || r.replyId === replyId)) yield r;
  }
}

export function findResult(history: readonly HistoryMessage[], replyId: string, toolCallId: string): ToolResult | undefined {
  for (const r of resultsIn(history, replyId)) if (r.toolCallId === toolCallId) return r;
  return undefined;
}

/** The history entry of a result, as the server writes it (same id, so a snapshot and live events agree). */
export function toolEntry(e: ToolResultFrame): HistoryMessage {
  const { replyId, toolCallId, output, isError, author, createdAt } = e;
  return { id: `tool:${replyId}:${toolCallId}`, role: 'tool', text: output, createdAt, author: { ...author }, replyId, toolCallId, isError };
}

/** Results are handed to apps as they are, so they are made immutable once instead of copied on every read. */
function freeze(r: ToolResult): ToolResult {
  return Object.freeze({ ...r, author: Object.freeze({ id: r.author.id, name: r.author.name }) });
}
