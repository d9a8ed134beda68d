// The one fold of a conversation's events into what a joiner is shown: the
// complete messages, in order, and the reply still streaming. Both backends
// use these functions, the in-memory one as each event lands, the Redis one
// when a node writes a message or ends a reply, and when it reads the reply in
// flight back from the retained log; so history means the same on both.
import type { ConversationEvent, ConversationEventOf, HistoryMessage, ServerFrameOf, ToolCall, ToolCallDelta } from '../../shared/protocol.js';

export interface HistoryEntry {
  message: HistoryMessage;
  /** seq of the event that opened it (the message, or the reply.start): orders the history. */
  startSeq: number;
}

/** The reply in flight, as its events so far add up. */
export interface InFlight {
  replyId: string;
  inReplyTo: string;
  /** The message before it on its branch. */
  parentId: string | undefined;
  model: string;
  startSeq: number;
  /** seq of the last event folded in. */
  seq: number;
  createdAt: number;
  text: string;
  reasoning: string;
  refusal: string;
  /** The tool calls written so far, by their `index`. */
  toolCalls: ToolCall[];
}

/** Events that add their own history entry as they are written (the rest are a reply's, folded below). */
export type EntryEvent = ConversationEventOf<'message' | 'tool.result'>;
export type ReplyEvent = ConversationEventOf<'reply.start' | 'reply.delta' | 'reply.end'>;
export function isReplyEvent(event: ConversationEvent): event is ReplyEvent {
  return event.type === 'reply.start' || event.type === 'reply.delta' || event.type === 'reply.end';
}

/** A user message or a tool result as it stands in history. */
export function entryOf(event: EntryEvent): HistoryEntry {
  if (event.type === 'message') return { message: { ...event.message }, startSeq: event.seq };
  const { replyId, toolCallId, output, isError, author, createdAt, parentId } = event;
  const message: HistoryMessage = { id: toolResultId(replyId, toolCallId), role: 'tool', text: output, createdAt, author, replyId, toolCallId, isError };
  if (parentId !== undefined) message.parentId = parentId;
  return { message, startSeq: event.seq };
}

/** A tool result's id, in history and as the key that lets each call be answered once. */
export function toolResultId(replyId: string, toolCallId: string): string {
  return `tool:${replyId}:${toolCallId}`;
}

type Keyed = { type: 'message'; message: { clientMessageId?: string | undefined } } | { type: 'tool.result'; replyId: string; toolCallId: string };

/** The key under which an entry is written once: a message's clientMessageId, a tool result's call. */
export function entryKey(event: Keyed): string | undefined {
  return event.type === 'message' ? event.message.clientMessageId : toolResultId(event.replyId, event.toolCallId);
}

/** What a reply event does to the reply in flight: the new state, and the history entry it completes (reply.end). */
export interface ReplyStep {
  inFlight: InFlight | undefined;
  completed?: HistoryEntry;
}

/**
 * One reply event folded into the reply in flight. An event of another reply
 * (a reply.end for a queued reply that never started) changes nothing.
 * `at` is when the event was appended: a reply.start's is the message's createdAt.
 */
export function foldReply(inFlight: InFlight | undefined, event: ReplyEvent, at: number): ReplyStep {
  switch (event.type) {
    case 'reply.start':
      return {
        inFlight: { replyId: event.replyId, inReplyTo: event.inReplyTo, parentId: event.parentId, model: event.model, startSeq: event.seq, seq: event.seq, createdAt: at, text: '', reasoning: '', refusal: '', toolCalls: [] },
      };
    case 'reply.delta': {
      if (!inFlight || inFlight.replyId !== event.replyId) return { inFlight };
      // In place: this runs once per token.
      if (event.text) inFlight.text += event.text;
      if (event.reasoning) inFlight.reasoning += event.reasoning;
      if (event.refusal) inFlight.refusal += event.refusal;
      if (event.toolCall) growToolCall(inFlight.toolCalls, event.toolCall);
      inFlight.seq = event.seq;
      return { inFlight };
    }
    case 'reply.end': {
      if (!inFlight || inFlight.replyId !== event.replyId) return { inFlight };
      const s = inFlight;
      // A redacted reply keeps none of what it wrote.
      const kept = event.redacted ? { text: '', reasoning: '', refusal: '' } : s;
      const message: HistoryMessage = { id: s.replyId, role: 'assistant', text: kept.text, createdAt: s.createdAt, finishReason: event.finishReason, model: s.model, inReplyTo: s.inReplyTo };
      if (s.parentId !== undefined) message.parentId = s.parentId;
      if (kept.reasoning) message.reasoning = kept.reasoning;
      if (kept.refusal) message.refusal = kept.refusal;
      if (event.redacted) message.redacted = true;
      if (event.toolCalls?.length) message.toolCalls = event.toolCalls;
      if (event.usage) message.usage = event.usage;
      if (event.error) message.error = event.error;
      return { inFlight: undefined, completed: { message, startSeq: s.startSeq } };
    }
  }
}

/** A tool call piece added to the call at its index (a piece for a later index begins that call). */
function growToolCall(calls: ToolCall[], piece: ToolCallDelta): void {
  while (calls.length <= piece.index) calls.push({ id: '', name: '', arguments: '' });
  const call = calls[piece.index]!;
  if (piece.id) call.id = piece.id;
  if (piece.name) call.name = piece.name;
  if (piece.arguments) call.arguments += piece.arguments;
}

/**
 * A replay without the deltas of redacted replies: their text is gone from
 * history, and a member resuming from before them must not see it either.
 * (A replay that holds such deltas holds their reply.end too: it comes later.)
 */
export function withoutRedacted<T extends { readonly event: ConversationEvent }>(events: readonly T[]): readonly T[] {
  const redacted = new Set<string>();
  for (const { event } of events) if (event.type === 'reply.end' && event.redacted) redacted.add(event.replyId);
  if (redacted.size === 0) return events;
  return events.filter(({ event }) => !(event.type === 'reply.delta' && redacted.has(event.replyId)));
}

/** Fold a run of retained events (oldest first, with the time each was appended) into the reply in flight. */
export function replayReply(events: ReadonlyArray<{ event: ConversationEvent; at: number }>): InFlight | undefined {
  let inFlight: InFlight | undefined;
  for (const { event, at } of events) {
    if (isReplyEvent(event)) inFlight = foldReply(inFlight, event, at).inFlight;
  }
  return inFlight;
}

/**
 * Insert by startSeq, so a reply lands after the message it answers and before
 * messages sent while it streamed (the bound is the caller's: branches.toPrune).
 */
export function insertHistory(history: HistoryEntry[], entry: HistoryEntry): void {
  let at = history.length;
  while (at > 0 && history[at - 1]!.startSeq > entry.startSeq) at--;
  history.splice(at, 0, entry);
}

/** The reply in flight as a node of the tree (history/branches.ts). */
export function inFlightNode(s: InFlight | undefined): { id: string; parentId: string | undefined } | undefined {
  return s && { id: s.replyId, parentId: s.parentId };
}

/** The `joined.streaming` view of a reply in flight: what its deltas so far add up to. */
export function streamingView(s: InFlight): NonNullable<ServerFrameOf<'joined'>['streaming']> {
  return {
    replyId: s.replyId,
    inReplyTo: s.inReplyTo,
    text: s.text,
    seq: s.seq,
    model: s.model,
    ...(s.reasoning ? { reasoning: s.reasoning } : {}),
    ...(s.refusal ? { refusal: s.refusal } : {}),
    ...(s.toolCalls.length ? { toolCalls: s.toolCalls.map((c) => ({ ...c })) } : {}),
  };
}

/** Replies that ended before any text or tool call (errors, early cancels) say nothing worth sending upstream. */
export function worthSending(message: HistoryMessage): boolean {
  return message.role !== 'assistant' || message.text !== '' || (message.toolCalls?.length ?? 0) > 0;
}

/**
 * The user message a message answers, through the replies of a tool loop (a
 * continuation answers the reply before it), and how many replies lie between.
 */
export function rootOf(byId: ReadonlyMap<string, HistoryMessage>, messageId: string | undefined): { root: HistoryMessage | undefined; hops: number } {
  let hops = 0;
  let at = messageId === undefined ? undefined : byId.get(messageId);
  while (at?.role === 'assistant' && at.inReplyTo !== undefined && hops < byId.size) {
    hops++;
    at = byId.get(at.inReplyTo);
  }
  return { root: at?.role === 'user' ? at : undefined, hops };
}
