// One assistant reply as the app sees it: the text so far, an async iterator
// of the pieces as they arrive, the tool calls as they are written, their
// results, the reply that continues it once they are in, and a promise of how
// it ended.
import type { HistoryMessage, ServerFrameOf, ToolCall, ToolCallDelta } from '../shared/protocol.js';
import { AsyncQueue, Emitter } from './emitter.js';
import { catchUpToolCalls, copyToolCalls, growToolCall } from './tool-calls.js';
import { resultsIn, type ToolResult } from './tool-results.js';

type ReplyEnd = ServerFrameOf<'reply.end'>;

/** How a reply ended, with all of its text. */
export type ReplyResult = Pick<ReplyEnd, 'replyId' | 'finishReason' | 'usage' | 'toolCalls' | 'error' | 'redacted'> & { text: string };

/** One tool call of a reply changed: it began, its arguments grew, or a snapshot or the end filled it in. */
export interface ToolCallUpdate {
  replyId: string;
  /** The call's place in `reply.toolCalls` (and in the final `result.toolCalls`). */
  index: number;
  /** The whole call so far. */
  call: ToolCall;
}

export interface ReplyEvents {
  toolCall: ToolCallUpdate;
  /** A result for one of this reply's calls arrived (live, replayed, or found in a snapshot). */
  toolResult: ToolResult;
  /** The relay started the reply that goes on from this one's tool results. */
  continuation: Reply;
}

/** New pieces of a reply: what a `reply.delta` carries. */
export interface ReplyPiece {
  text?: string | undefined;
  reasoning?: string | undefined;
  refusal?: string | undefined;
  toolCall?: ToolCallDelta | undefined;
}

/** All of a reply so far: what `joined.streaming` or a history entry holds. */
export interface ReplySnapshot {
  text: string;
  reasoning?: string | undefined;
  refusal?: string | undefined;
  toolCalls?: readonly ToolCall[] | undefined;
}

/** Pieces one iterator may have waiting before they are coalesced into one. */
const ITERATOR_PIECES = 256;

/** The part of `full` that `ours` is missing, when ours is a prefix of it (events are never reordered). */
function missingTail(ours: string, full: string | undefined): string {
  return full !== undefined && full.length > ours.length && full.startsWith(ours) ? full.slice(ours.length) : '';
}

export class Reply extends Emitter<ReplyEvents> implements AsyncIterable<string> {
  private textValue = '';
  private reasoningValue = '';
  private refusalValue = '';
  private readonly calls: ToolCall[] = [];
  private readonly results = new Map<string, ToolResult>();
  private continuationValue: Reply | undefined;
  private modelValue: string | undefined;
  private inReplyToValue: string | undefined;
  private startedValue = false;
  private resultValue: ReplyResult | undefined;
  private readonly iterators = new Set<AsyncQueue<string>>();
  private resolveResult!: (r: ReplyResult) => void;
  /** Always resolves (never rejects): a failure is a result with finishReason "error". */
  readonly result: Promise<ReplyResult>;

  constructor(
    readonly id: string,
    readonly conversationId: string,
  ) {
    super();
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get text(): string {
    return this.textValue;
  }
  get reasoning(): string {
    return this.reasoningValue;
  }
  get refusal(): string {
    return this.refusalValue;
  }
  /**
   * The tool calls written so far, in their final order; the last may still be
   * growing. Once the reply ended, exactly `result.toolCalls` (none when it was
   * cancelled or failed, as the server keeps it).
   */
  get toolCalls(): readonly ToolCall[] {
    return copyToolCalls(this.calls);
  }
  /** Results of this reply's tool calls so far, by toolCallId. */
  get toolResults(): ReadonlyMap<string, ToolResult> {
    return new Map(this.results);
  }
  /** Calls of a reply that ended with `tool_calls` that have no result yet. */
  get pendingToolCalls(): readonly ToolCall[] {
    if (this.resultValue?.finishReason !== 'tool_calls') return [];
    return copyToolCalls(this.calls.filter((c) => !this.results.has(c.id)));
  }
  /** The reply the relay started once all of this one's calls were answered. */
  get continuation(): Reply | undefined {
    return this.continuationValue;
  }
  /**
   * What this reply answers, from its `reply.start`: a user message id, or for
   * a continuation the id of the reply whose tool calls it goes on from.
   * Unknown for a reply only seen in a snapshot.
   */
  get inReplyTo(): string | undefined {
    return this.inReplyToValue;
  }
  get model(): string | undefined {
    return this.modelValue;
  }
  /** reply.start has been seen (or a snapshot showed it streaming). */
  get started(): boolean {
    return this.startedValue;
  }
  get done(): boolean {
    return this.resultValue !== undefined;
  }
  get finished(): ReplyResult | undefined {
    return this.resultValue;
  }

  /** @internal */
  start(model: string | undefined, inReplyTo?: string): void {
    this.startedValue = true;
    if (model !== undefined) this.modelValue = model;
    if (inReplyTo !== undefined) this.inReplyToValue = inReplyTo;
  }

  /** @internal Each call is answered once: a replay or a snapshot repeating a result is no news. */
  addResult(result: ToolResult): void {
    if (this.results.has(result.toolCallId)) return;
    this.results.set(result.toolCallId, result);
    this.emit('toolResult', result);
  }

  /** @internal */
  continueWith(next: Reply): void {
    if (this.continuationValue || next === this) return;
    this.continuationValue = next;
    this.emit('continuation', next);
  }

  /** @internal */
  append(piece: ReplyPiece): void {
    if (this.done) return;
    this.startedValue = true;
    if (piece.reasoning) this.reasoningValue += piece.reasoning;
    if (piece.refusal) this.refusalValue += piece.refusal;
    if (piece.toolCall && growToolCall(this.calls, piece.toolCall)) this.emitCall(piece.toolCall.index);
    if (piece.text) this.appendText(piece.text);
  }

  /** @internal A snapshot knows all of the reply so far; only what we are missing is new. */
  catchUp(s: ReplySnapshot): void {
    if (this.done) return;
    this.reasoningValue += missingTail(this.reasoningValue, s.reasoning);
    this.refusalValue += missingTail(this.refusalValue, s.refusal);
    for (const i of catchUpToolCalls(this.calls, s.toolCalls ?? [])) this.emitCall(i);
    const text = missingTail(this.textValue, s.text);
    if (text) this.appendText(text);
  }

  /** @internal `full` is the whole reply, when the end is learnt from a snapshot rather than seen. */
  finish(end: Omit<ReplyResult, 'text' | 'replyId'>, full?: ReplySnapshot): void {
    if (this.done) return;
    if (full !== undefined) this.catchUp(full);
    // The final list is the truth: it replaces the calls seen growing (none survive a cancel or an error).
    const final = end.toolCalls ?? [];
    const changed = catchUpToolCalls(this.calls, final);
    this.calls.length = final.length;
    // Moderation took it back: what streamed is not to be shown any more.
    if (end.redacted) this.textValue = this.reasoningValue = this.refusalValue = '';
    this.resultValue = { replyId: this.id, text: this.textValue, ...end };
    for (const it of this.iterators) it.end();
    this.iterators.clear();
    // After resultValue is set, so a listener can tell the final state (reply.done) from growth.
    for (const i of changed) this.emitCall(i);
    this.resolveResult(this.resultValue);
  }

  private appendText(text: string): void {
    this.startedValue = true;
    this.textValue += text;
    for (const it of this.iterators) it.mergeLast((last) => last + text, text);
  }

  private emitCall(index: number): void {
    const call = this.calls[index];
    if (call) this.emit('toolCall', { replyId: this.id, index, call: { ...call } });
  }

  /** Text pieces from the start of the reply (what arrived before iteration is yielded first, in one piece). */
  [Symbol.asyncIterator](): AsyncIterableIterator<string> {
    const queue: AsyncQueue<string> = new AsyncQueue(ITERATOR_PIECES, () => this.iterators.delete(queue));
    if (this.textValue) queue.push(this.textValue);
    if (this.done) queue.end();
    else this.iterators.add(queue);
    return queue;
  }
}

/** Reply handles kept per conversation; finished ones are evicted first. */
const MAX_REPLY_HANDLES = 64;

/** Keep a conversation's map of reply handles bounded. */
export function trimReplies(replies: Map<string, Reply>): void {
  if (replies.size <= MAX_REPLY_HANDLES) return;
  for (const [id, r] of replies) {
    if (replies.size <= MAX_REPLY_HANDLES) return;
    if (r.done) replies.delete(id);
  }
  // All unfinished (a flood of queued replies): the oldest handle goes; its owner still has the object.
  while (replies.size > MAX_REPLY_HANDLES * 2) replies.delete(replies.keys().next().value!);
}

/**
 * A snapshot replaced history: the replies the app holds learn what happened
 * while it was away (their end, or that they are gone) and the results of
 * their tool calls.
 */
export function catchUpHeld(replies: ReadonlyMap<string, Reply>, history: readonly HistoryMessage[], streamingId: string | undefined): void {
  for (const r of replies.values()) {
    if (r.done || r.id === streamingId) continue;
    const done = history.find((m) => m.id === r.id && m.role === 'assistant');
    if (done) r.finish({ finishReason: done.finishReason ?? 'stop', ...(done.toolCalls ? { toolCalls: done.toolCalls } : {}) }, done);
    else if (r.started) r.finish({ finishReason: 'error', error: { code: 'not_found', message: 'the reply is no longer retained' } });
  }
  for (const result of resultsIn(history)) replies.get(result.replyId)?.addResult(result);
}
