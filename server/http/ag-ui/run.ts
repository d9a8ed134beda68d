// One AG-UI run: a member of the thread's conversation that follows one reply
// and tells it as AG-UI events over SSE. The reply's id is the assistant
// message's id, so the tool calls it makes belong to that message; reasoning
// is a reasoning message of its own beside it.
import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../../../shared/codes.js';
import type { ServerFrameOf, ToolCallDelta, Usage } from '../../../shared/protocol.js';
import type { Who } from '../../rooms/access.js';
import { ReplyFollower } from '../../rooms/reply-follower.js';
import { SseResponse } from '../sse-response.js';

export interface RunOptions {
  threadId: string;
  runId: string;
  sendBufferLimitBytes: number;
  /** Response headers besides SSE's own (CORS). */
  headers: Record<string, string>;
}

/** How a run ended: its reply's end, or the client going away first. */
export type Outcome = { kind: 'ended'; end: ServerFrameOf<'reply.end'> } | { kind: 'gone' };

/** A tool call as it streams: AG-UI starts it once its id and name are known. */
interface CallState {
  id?: string;
  name?: string;
  started: boolean;
  /** Arguments that came before the call could start. */
  pending: string;
}

export class AgUiRun {
  readonly member: ReplyFollower;
  readonly outcome: Promise<Outcome>;
  private settle!: (o: Outcome) => void;
  private readonly sse: SseResponse;
  private textOpen = false;
  private reasoningOpen = false;
  private readonly calls = new Map<number, CallState>();

  constructor(
    who: Who,
    res: ServerResponse,
    private readonly opts: RunOptions,
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    res.once('close', () => this.settle({ kind: 'gone' }));
    this.sse = new SseResponse(res, opts.sendBufferLimitBytes, opts.headers);
    this.member = new ReplyFollower(who, this.sse.output, { started: () => undefined, delta: (d) => this.delta(d), ended: (e) => this.end(e), none: () => undefined }, 'own');
  }

  /** Dropped for falling too far behind, rather than gone by the client's choice. */
  get overflowed(): boolean {
    return this.sse.overflowed;
  }

  private get messageId(): string {
    return this.member.replyId ?? this.opts.runId;
  }

  private emit(type: string, fields: Record<string, unknown> = {}): void {
    this.sse.data({ type, timestamp: Date.now(), ...fields });
  }

  /** The run has begun: the first event, before anything can fail. */
  start(): void {
    this.emit('RUN_STARTED', { threadId: this.opts.threadId, runId: this.opts.runId });
  }

  /** The run fails: nothing more follows. */
  fail(code: ErrorCode, message: string): void {
    this.closeOpen();
    this.emit('RUN_ERROR', { message, code });
    this.sse.end();
  }

  /** The run ends without a reply of its own (the results it brought leave calls open). */
  finishWaiting(pendingToolCallIds: string[]): void {
    this.emit('RUN_FINISHED', { threadId: this.opts.threadId, runId: this.opts.runId, outcome: { type: 'success', pendingToolCallIds } });
    this.sse.end();
  }

  private delta({ text, reasoning, refusal, toolCall }: ServerFrameOf<'reply.delta'>): void {
    if (reasoning) {
      this.openReasoning();
      this.emit('REASONING_MESSAGE_CONTENT', { messageId: this.reasoningId, delta: reasoning });
    }
    const words = (text ?? '') + (refusal ?? '');
    if (words) {
      this.closeReasoning();
      this.openText();
      this.emit('TEXT_MESSAGE_CONTENT', { messageId: this.messageId, delta: words });
    }
    if (toolCall) {
      this.closeReasoning();
      this.callPiece(toolCall);
    }
  }

  private end(end: ServerFrameOf<'reply.end'>): void {
    this.closeReasoning();
    this.closeText();
    // The final calls are the authority: one whose id or name never streamed is told whole here.
    for (const [index, call] of (end.toolCalls ?? []).entries()) {
      const state = this.calls.get(index);
      if (!state?.started) this.callPiece({ index, id: call.id, name: call.name, arguments: state ? '' : call.arguments });
    }
    this.closeCalls();
    const { threadId, runId } = this.opts;
    const usage = end.usage ? [tokenUsage(end.usage)] : undefined;
    if (end.error) this.emit('RUN_ERROR', { message: end.error.message, code: end.error.code, ...(usage ? { usage } : {}) });
    else this.emit('RUN_FINISHED', { threadId, runId, outcome: outcomeOf(end), ...(usage ? { usage } : {}) });
    this.sse.end();
    this.settle({ kind: 'ended', end });
  }

  private get reasoningId(): string {
    return `reasoning-${this.messageId}`;
  }

  private openReasoning(): void {
    if (this.reasoningOpen) return;
    this.reasoningOpen = true;
    this.emit('REASONING_START', { messageId: this.reasoningId });
    this.emit('REASONING_MESSAGE_START', { messageId: this.reasoningId, role: 'reasoning' });
  }

  private closeReasoning(): void {
    if (!this.reasoningOpen) return;
    this.reasoningOpen = false;
    this.emit('REASONING_MESSAGE_END', { messageId: this.reasoningId });
    this.emit('REASONING_END', { messageId: this.reasoningId });
  }

  private openText(): void {
    if (this.textOpen) return;
    this.textOpen = true;
    this.emit('TEXT_MESSAGE_START', { messageId: this.messageId, role: 'assistant' });
  }

  private closeText(): void {
    if (!this.textOpen) return;
    this.textOpen = false;
    this.emit('TEXT_MESSAGE_END', { messageId: this.messageId });
  }

  private callPiece({ index, id, name, arguments: args }: ToolCallDelta): void {
    const state = this.calls.get(index) ?? { started: false, pending: '' };
    this.calls.set(index, state);
    state.id ??= id;
    state.name ??= name;
    if (!state.started && state.id && state.name) {
      state.started = true;
      this.emit('TOOL_CALL_START', { toolCallId: state.id, toolCallName: state.name, parentMessageId: this.messageId });
      args = state.pending + (args ?? '');
      state.pending = '';
    }
    if (!args) return;
    if (state.started) this.emit('TOOL_CALL_ARGS', { toolCallId: state.id, delta: args });
    else state.pending += args;
  }

  private closeCalls(): void {
    for (const state of this.calls.values()) if (state.started) this.emit('TOOL_CALL_END', { toolCallId: state.id });
    this.calls.clear();
  }

  /** Everything still open ends before the run does, as AG-UI requires. */
  private closeOpen(): void {
    this.closeReasoning();
    this.closeText();
    this.closeCalls();
  }
}

function outcomeOf(end: ServerFrameOf<'reply.end'>): Record<string, unknown> {
  if (end.finishReason === 'cancelled') return { type: 'cancelled' };
  const pending = end.finishReason === 'tool_calls' ? (end.toolCalls ?? []).map((c) => c.id) : [];
  return { type: 'success', ...(pending.length ? { pendingToolCallIds: pending } : {}) };
}

/** AG-UI counts cached and reasoning tokens as parts of the input and output totals, as the relay does. */
function tokenUsage(u: Usage) {
  return {
    inputTokens: u.promptTokens,
    outputTokens: u.completionTokens,
    totalTokens: u.totalTokens,
    ...(u.cachedTokens !== undefined ? { cachedInputTokens: u.cachedTokens } : {}),
    ...(u.reasoningTokens !== undefined ? { reasoningTokens: u.reasoningTokens } : {}),
  };
}
