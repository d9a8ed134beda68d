// The history entry of an assistant reply, kept while it streams. It grows the
// way the server folds the same events into its history, so the entry a client
// built from deltas equals the one a later joiner gets in `joined.history`.
import type { HistoryMessage, ServerFrameOf } from '../shared/protocol.js';
import { copyToolCalls, growToolCall } from './tool-calls.js';

type Streaming = NonNullable<ServerFrameOf<'joined'>['streaming']>;

/** The entry of a reply that just started. */
export function startedEntry(replyId: string, model: string | undefined, parentId?: string, inReplyTo?: string): HistoryMessage {
  return { id: replyId, role: 'assistant', text: '', createdAt: Date.now(), ...(model ? { model } : {}), ...(parentId ? { parentId } : {}), ...(inReplyTo ? { inReplyTo } : {}) };
}

/** The entry of the reply a snapshot shows in flight: everything it has written so far. */
export function streamingEntry(s: Streaming): HistoryMessage {
  const entry = startedEntry(s.replyId, s.model, undefined, s.inReplyTo);
  entry.text = s.text;
  if (s.reasoning) entry.reasoning = s.reasoning;
  if (s.refusal) entry.refusal = s.refusal;
  if (s.toolCalls?.length) entry.toolCalls = copyToolCalls(s.toolCalls);
  return entry;
}

/** Add one delta's pieces. */
export function growEntry(entry: HistoryMessage, d: ServerFrameOf<'reply.delta'>): void {
  if (d.text) entry.text += d.text;
  if (d.reasoning) entry.reasoning = (entry.reasoning ?? '') + d.reasoning;
  if (d.refusal) entry.refusal = (entry.refusal ?? '') + d.refusal;
  if (d.toolCall) growToolCall((entry.toolCalls ??= []), d.toolCall);
}

/** The reply ended: the final tool calls replace the ones seen growing (a cancelled or failed reply keeps none). */
export function endEntry(entry: HistoryMessage, e: ServerFrameOf<'reply.end'>): void {
  entry.finishReason = e.finishReason;
  if (e.redacted) {
    entry.text = '';
    delete entry.reasoning;
    delete entry.refusal;
    entry.redacted = true;
  }
  if (e.toolCalls?.length) entry.toolCalls = copyToolCalls(e.toolCalls);
  else delete entry.toolCalls;
}
