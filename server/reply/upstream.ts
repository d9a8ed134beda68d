// The upstream call: one streaming chat.completions request, turned into
// text/reasoning/refusal pieces as chunks arrive, plus what the stream said at
// its end (finish reason, usage, tool calls).
//
// The openai SDK makes the request (auth, retries before any byte of the body,
// HTTP errors as typed classes); the body is decoded here, so that arriving
// bytes feed the idle watchdog, an oversized event is cut off, decoding stays
// linear however the upstream fragments its writes, and an error chunk's usage
// still counts.
import type { IncomingMessage } from 'node:http';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { FinishReason, ToolCall } from '../../shared/protocol.js';
import { RelayError, upstreamFailure } from '../errors.js';
import { nodeBody, nodeFetch, responseOrAbort } from './http-fetch.js';
import { SseDecoder, type SseEvent } from './sse.js';

export interface UpstreamOptions {
  apiKey: string;
  baseURL?: string | undefined;
  maxRetries: number;
  includeUsage: boolean;
  idleTimeoutMs: number;
  /** An SSE event longer than this is cut off with an error. */
  maxEventChars: number;
  /** Keep-alive connections kept open between replies (the rest are closed when their reply ends). */
  maxIdleConnections: number;
}

export interface CompletionRequest {
  model: string;
  messages: ChatCompletionMessageParam[];
  temperature?: number | undefined;
  maxTokens?: number | undefined;
}

export interface Piece {
  text?: string;
  reasoning?: string;
  refusal?: string;
}

export interface UpstreamUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** What the stream reported by the time it ended (or was aborted, or failed). */
export interface Completion {
  finishReason: Exclude<FinishReason, 'cancelled' | 'error'> | undefined;
  usage: UpstreamUsage | undefined;
  toolCalls: ToolCall[];
}

/** An upstream failure, with what the stream had reported before it. */
export class UpstreamError extends RelayError {
  override name = 'UpstreamError';
  constructor(
    cause: RelayError,
    readonly partial: Completion,
  ) {
    super(cause.code, cause.message);
  }
}

export class Upstream {
  private readonly client: OpenAI;

  constructor(private readonly opts: UpstreamOptions) {
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: opts.maxRetries,
      // Per attempt, until the response begins; an attempt that hears nothing is retried like a failed one.
      timeout: opts.idleTimeoutMs,
      // The SDK's logger would print raw response lines (model output) on some errors.
      logLevel: 'off',
      fetch: nodeFetch(opts.maxIdleConnections),
    });
  }

  /**
   * Stream one completion. `onPiece` is awaited for every non-empty piece, in
   * order. Resolves with what the stream reported; rejects with an
   * UpstreamError. When `signal` aborts, resolves quietly with what arrived
   * so far: the caller knows why it aborted.
   */
  async stream(req: CompletionRequest, signal: AbortSignal, onPiece: (piece: Piece) => void | Promise<void>): Promise<Completion> {
    // A second controller so the idle watchdog can abort without touching the caller's signal.
    const inner = new AbortController();
    const forward = () => inner.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    // Aborted before the call (a cancel while the context was read): no request goes out at all.
    if (signal.aborted) forward();
    const folder = new ChunkFolder();
    // Silence after a finish reason is a stream that forgot to end, not a failure: it ends with that reason.
    const onIdle = () =>
      inner.abort(folder.finished ? FINISHED : new RelayError('upstream_timeout', `no data from the model API for ${this.opts.idleTimeoutMs} ms`));
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(onIdle, this.opts.idleTimeoutMs);
    };
    try {
      const response = await responseOrAbort(this.request(req, inner.signal), inner.signal);
      const body = nodeBody(response);
      if (!body) throw new RelayError('upstream_error', 'the model API answered without a body');
      touch();
      await readEvents(body, this.opts.maxEventChars, touch, inner.signal, (event) => {
        if (event.data === '[DONE]') return DONE;
        const piece = folder.fold(event);
        return piece && onPiece(piece);
      });
      if (inner.signal.aborted && !signal.aborted && inner.signal.reason !== FINISHED) throw inner.signal.reason;
      return folder.completion();
    } catch (err) {
      if (signal.aborted) return folder.completion();
      throw new UpstreamError(upstreamFailure(inner.signal.aborted ? inner.signal.reason : err), folder.completion());
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', forward);
    }
  }

  /**
   * The response of the first attempt that succeeds. The SDK retries before
   * any byte of a reply; each attempt waits at most the idle timeout for its
   * response to begin (the client's per-attempt `timeout`), and the pauses
   * between attempts are not the upstream's silence: they count only against
   * the reply's own deadline.
   */
  private request(req: CompletionRequest, signal: AbortSignal): Promise<Response> {
    return this.client.chat.completions
      .create(
        {
          model: req.model,
          messages: req.messages,
          stream: true,
          ...(this.opts.includeUsage ? { stream_options: { include_usage: true } } : {}),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
        },
        { signal },
      )
      .asResponse();
  }
}

/** Why the idle watchdog ended a stream that had already said how it finished. */
const FINISHED = Symbol('finished');

/** What an event handler returns to stop reading: the stream said `[DONE]`. */
const DONE = Symbol('done');

/** How long a body may take to end after `[DONE]` before its connection is given up rather than reused. */
const DRAIN_AFTER_DONE_MS = 1_000;

/**
 * Hands a body's SSE events to `onEvent` in order, from the socket's own
 * 'data' events (no promise per read), pausing the body while `onEvent`'s
 * promise is pending. Resolves at the end of the body, at `[DONE]`, or
 * quietly when `signal` aborts; rejects on a broken body or a bad event.
 */
/** Characters of events decoded ahead while one is being written, before the body is paused. */
const QUEUED_WHILE_WAITING_CHARS = 64 * 1024;

function readEvents(
  body: IncomingMessage,
  maxEventChars: number,
  onBytes: () => void,
  signal: AbortSignal,
  onEvent: (event: SseEvent) => typeof DONE | void | Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const decoder = new SseDecoder(maxEventChars);
    let queue: SseEvent[] = [];
    let next = 0;
    let waiting = false;
    let ended = false;
    let finished = false;
    /** The body broke while an event was being written: the error waits until the queue is drained. */
    let broken: unknown;
    /** Characters of the events in the queue not yet handled. */
    let queuedChars = 0;
    const finish = (err?: unknown, done = false) => {
      if (finished) return;
      finished = true;
      body.off('data', onData).off('end', onEnd).off('error', fail).off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      // Whatever the body does from here on is no longer this reply's concern.
      body.on('error', () => undefined);
      if (ended) {
        // Read to its end: the connection goes back to the agent for the next reply.
      } else if (done) {
        // The upstream said [DONE] and normally ends the body right after: let it, so the connection is reused.
        const giveUp = setTimeout(() => body.destroy(), DRAIN_AFTER_DONE_MS);
        body.once('close', () => clearTimeout(giveUp)).resume();
      } else {
        // Cancelled or failed: destroying the body closes the connection, and the upstream sees it.
        body.destroy();
      }
      if (err === undefined) resolve();
      else reject(err);
    };
    const drain = () => {
      try {
        while (next < queue.length && !finished && !signal.aborted) {
          const event = queue[next++]!;
          queuedChars -= event.data.length;
          const result = onEvent(event);
          if (result === DONE) return finish(undefined, true);
          if (result) {
            waiting = true;
            throttle();
            result.then(() => {
              waiting = false;
              if (finished) return;
              if (broken === undefined) body.resume();
              drain();
            }, finish);
            return;
          }
        }
      } catch (err) {
        return finish(err);
      }
      if (finished) return;
      queue = [];
      next = 0;
      if (broken !== undefined) finish(broken);
      else if (signal.aborted || ended) finish();
    };
    /**
     * While an event is being written, the body is read on until a bound is
     * queued, then paused: what already arrived is decoded, so a connection
     * that breaks meanwhile loses none of it.
     */
    const throttle = () => {
      if (queuedChars > QUEUED_WHILE_WAITING_CHARS) body.pause();
    };
    const take = (events: SseEvent[]) => {
      if (events.length === 0) return;
      if (next === queue.length) {
        queue = events;
        next = 0;
      } else {
        queue.push(...events);
      }
      for (const e of events) queuedChars += e.data.length;
      if (!waiting) drain();
      else throttle();
    };
    const onData = (chunk: string) => {
      onBytes();
      try {
        take(decoder.push(chunk));
      } catch (err) {
        finish(err);
      }
    };
    const onEnd = () => {
      ended = true;
      try {
        take(decoder.end());
      } catch (err) {
        return finish(err);
      }
      if (!waiting) drain();
    };
    /** A broken body: events that arrived before the break are still this reply's, and go out first. */
    const fail = (err: unknown) => {
      if (!waiting) return finish(err);
      broken ??= err;
    };
    const onClose = () => {
      if (!ended) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    const onAbort = () => finish();
    if (signal.aborted) return finish();
    signal.addEventListener('abort', onAbort, { once: true });
    body.setEncoding('utf8');
    body.on('data', onData).on('end', onEnd).on('error', fail).on('close', onClose);
  });
}

// Upstream chunks are other people's JSON: read leniently (every field
// optional, one of an unexpected type treated as absent) and by hand, since
// this runs once per token.
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

const FINISH_REASONS: Record<string, Completion['finishReason']> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  content_filter: 'content_filter',
};

/** Folds events: returns each one's visible piece, remembers the rest for the end. */
class ChunkFolder {
  private finishReason: Completion['finishReason'];
  private usage: UpstreamUsage | undefined;
  /** Tool calls in the order they began; `byIndex` finds them by the `index` their pieces carry. */
  private readonly tools: ToolCall[] = [];
  private readonly byIndex = new Map<number, ToolCall>();

  /** Throws a RelayError on an error event or a malformed one. */
  fold(event: SseEvent): Piece | undefined {
    let chunk: unknown;
    try {
      chunk = JSON.parse(event.data);
    } catch {
      throw new RelayError('upstream_error', 'the model API sent a malformed event');
    }
    if (!isRecord(chunk)) throw new RelayError('upstream_error', 'the model API sent an event that is not a chunk');
    // Some providers repeat cumulative usage on every chunk: the last one wins.
    const usage = chunk.usage;
    if (isRecord(usage)) {
      const promptTokens = count(usage.prompt_tokens);
      const completionTokens = count(usage.completion_tokens);
      const totalTokens = count(usage.total_tokens);
      if (promptTokens !== undefined && completionTokens !== undefined && totalTokens !== undefined) {
        this.usage = { promptTokens, completionTokens, totalTokens };
      }
    }
    // An error comes as `event: error` or as a chunk with an `error` field; its usage (above) still counts.
    if (event.event === 'error' || chunk.error) throw new RelayError('upstream_error', 'the model API failed (error event in the stream)');
    // The relay asks for one choice; a provider that sends more (n > 1) is read for index 0 only.
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return undefined;
    const list: unknown[] = choices;
    let choice: Record<string, unknown> | undefined;
    for (const c of list) {
      if (isRecord(c) && (c.index ?? 0) === 0) {
        choice = c;
        break;
      }
    }
    if (!choice) return undefined;
    const finish = text(choice.finish_reason);
    if (finish) this.finishReason = FINISH_REASONS[finish] ?? 'stop';
    const delta = choice.delta;
    if (!isRecord(delta)) return undefined;
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls) if (isRecord(call)) this.foldToolCall(call);
    }
    const piece: Piece = {};
    const content = text(delta.content);
    if (content) piece.text = content;
    // DeepSeek and vLLM say `reasoning_content`, OpenRouter and others `reasoning`.
    const reasoning = text(delta.reasoning_content) ?? text(delta.reasoning);
    if (reasoning) piece.reasoning = reasoning;
    const refusal = text(delta.refusal);
    if (refusal) piece.refusal = refusal;
    return piece.text || piece.reasoning || piece.refusal ? piece : undefined;
  }

  /** One piece of a tool call, added to the call it continues. */
  private foldToolCall(piece: Record<string, unknown>): void {
    const acc = this.callOf(count(piece.index), text(piece.id));
    const fn = piece.function;
    if (!isRecord(fn)) return;
    const name = text(fn.name);
    if (name) acc.name = name;
    const args = text(fn.arguments);
    if (args) acc.arguments += args;
  }

  /**
   * OpenAI numbers the calls with `index` and names each once with `id`;
   * other providers leave `index` out and send each call whole, or give every
   * call index 0. So a piece with an id not seen on the call it would join
   * begins a new call, and a piece with neither continues the last call.
   */
  private callOf(index: number | undefined, id: string | undefined): ToolCall {
    const current = index === undefined ? this.tools.at(-1) : this.byIndex.get(index);
    if (current && (id === undefined || current.id === '' || current.id === id)) {
      if (id) current.id = id;
      return current;
    }
    const call = { id: id ?? '', name: '', arguments: '' };
    this.tools.push(call);
    if (index !== undefined) this.byIndex.set(index, call);
    return call;
  }

  /** The stream has said how it finished. */
  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  completion(): Completion {
    return { finishReason: this.finishReason, usage: this.usage, toolCalls: [...this.tools] };
  }
}
