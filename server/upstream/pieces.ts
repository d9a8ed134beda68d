// What every upstream dialect turns its stream into: pieces as they arrive
// (text, reasoning, refusal, a piece of a tool call) and, at the end, how the
// reply finished and what it cost. The reply and everything after it see only
// these, never a provider's own shapes.
import type { FinishReason, ToolCall, ToolCallDelta } from '../../shared/protocol.js';
import { RelayError, type UpstreamFault } from '../errors.js';

export interface Piece {
  text?: string;
  reasoning?: string;
  refusal?: string;
  toolCall?: ToolCallDelta;
}

export interface UpstreamUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens?: number;
  reasoningTokens?: number;
}

export type UpstreamFinish = Exclude<FinishReason, 'cancelled' | 'error'>;

/**
 * Where a background response (Responses API) stands: its id, and the
 * sequence number of the last event read. Another node re-attaches after it.
 */
export interface UpstreamCursor {
  responseId: string;
  sequence: number;
}

/** What the stream reported by the time it ended (or was aborted, or failed). */
export interface Completion {
  finishReason: UpstreamFinish | undefined;
  usage: UpstreamUsage | undefined;
  toolCalls: ToolCall[];
  /** The model that answered: the one asked for, or a fallback (set by the router). */
  servedBy?: string;
  /** A background response: where it stood when the stream ended. */
  cursor?: UpstreamCursor;
}

/** A failed call as the operator's log shows it: the model the client named, the upstream's host, and what went wrong. */
export interface UpstreamDetail extends UpstreamFault {
  model: string;
  host: string;
}

/** An upstream failure, with what the stream had reported before it. */
export class UpstreamError extends RelayError {
  override name = 'UpstreamError';
  /** Filled in by the router, which knows where the call went. */
  detail: UpstreamDetail | undefined;
  constructor(
    failure: RelayError,
    readonly partial: Completion,
    /** It failed before a response began: nothing was shown, another upstream may still answer. */
    readonly beforeResponse: boolean,
    /** What was thrown, for deciding whether another upstream is worth a try. */
    readonly raw: unknown,
  ) {
    super(failure.code, failure.message);
  }
}

/**
 * The tool calls of one reply, in the order they began. Each dialect numbers
 * calls its own way (chat `index`, Responses item ids, Anthropic block
 * indexes) and maps them to the position here, which is the `index` clients
 * see: so the pieces of a call, joined, are always its entry in the final list.
 */
export class ToolCalls {
  private readonly calls: ToolCall[] = [];

  /** Begins a call; its position. */
  open(): number {
    return this.calls.push({ id: '', name: '', arguments: '' }) - 1;
  }

  /** What is new of call `index`, as the piece that tells it; undefined when nothing is. */
  grow(index: number, id: string | undefined, name: string | undefined, args: string | undefined): ToolCallDelta | undefined {
    const call = this.calls[index];
    if (!call) return undefined;
    const piece: ToolCallDelta = { index };
    if (id && call.id !== id) call.id = piece.id = id;
    if (name && call.name !== name) call.name = piece.name = name;
    if (args) {
      call.arguments += args;
      piece.arguments = args;
    }
    return piece.id || piece.name || piece.arguments ? piece : undefined;
  }

  at(index: number): ToolCall | undefined {
    return this.calls[index];
  }

  get length(): number {
    return this.calls.length;
  }

  list(): ToolCall[] {
    return this.calls.map((c) => ({ ...c }));
  }
}

// Upstream events are other people's JSON: read leniently (every field
// optional, one of an unexpected type treated as absent) and by hand, since
// this runs once per token.
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty string, or undefined. */
export function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A finite non-negative number, or undefined. */
export function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** The JSON object an event carries; a RelayError for anything else. */
export function parseEvent(data: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new RelayError('upstream_error', 'the model API sent a malformed event');
  }
  if (!isRecord(value)) throw new RelayError('upstream_error', 'the model API sent an event that is not an object');
  return value;
}
