// Tool calls as they are written: pieces (`reply.delta.toolCall`) folded into
// whole calls, the same way the server folds them into `joined.streaming`, so
// a client that joined late and one that saw every piece agree.
import type { ToolCall, ToolCallDelta } from '../shared/protocol.js';

/**
 * Add a piece to the call at its index; a piece for a later index begins that
 * call (and any skipped one, empty, so indexes keep matching the final list).
 * The grown call is a new object: one handed out earlier keeps what it showed.
 * Returns the grown call, or undefined when the piece changed nothing.
 */
export function growToolCall(calls: ToolCall[], piece: ToolCallDelta): ToolCall | undefined {
  while (calls.length <= piece.index) calls.push({ id: '', name: '', arguments: '' });
  const old = calls[piece.index]!;
  const grown: ToolCall = {
    id: piece.id || old.id,
    name: piece.name || old.name,
    arguments: old.arguments + (piece.arguments ?? ''),
  };
  if (sameCall(old, grown)) return undefined;
  calls[piece.index] = grown;
  return grown;
}

/**
 * Bring `calls` up to a fuller list (a snapshot, or the final one). Each call
 * is taken as given, not merged: the fuller list is what the server holds.
 * Returns the indexes that changed.
 */
export function catchUpToolCalls(calls: ToolCall[], fuller: readonly ToolCall[]): number[] {
  const changed: number[] = [];
  fuller.forEach((call, i) => {
    const ours = calls[i];
    if (ours && sameCall(ours, call)) return;
    calls[i] = { id: call.id, name: call.name, arguments: call.arguments };
    changed.push(i);
  });
  return changed;
}

/** Copies, so whoever holds the list cannot change the one they were given. */
export function copyToolCalls(calls: readonly ToolCall[]): ToolCall[] {
  return calls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
}

function sameCall(a: ToolCall, b: ToolCall): boolean {
  return a.id === b.id && a.name === b.name && a.arguments === b.arguments;
}
