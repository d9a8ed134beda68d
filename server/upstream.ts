// The upstream call: one streaming chat.completions request through the
// openai SDK, turned into text/reasoning/refusal pieces as chunks arrive, plus
// what the stream said at its end (finish reason, usage, tool calls).
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { FinishReason, ToolCall } from '../shared/protocol.js';
import { RelayError, upstreamFailure } from './errors.js';

export interface UpstreamOptions {
  apiKey: string;
  baseURL?: string | undefined;
  maxRetries: number;
  includeUsage: boolean;
  idleTimeoutMs: number;
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

/** What the stream reported by the time it ended (or was aborted). */
export interface Completion {
  finishReason: Exclude<FinishReason, 'cancelled' | 'error'> | undefined;
  usage: UpstreamUsage | undefined;
  toolCalls: ToolCall[];
}

export class Upstream {
  private readonly client: OpenAI;

  constructor(private readonly opts: UpstreamOptions) {
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: opts.maxRetries,
      // The SDK's logger would print raw SSE lines (model output) on parse errors.
      logLevel: 'off',
    });
  }

  /**
   * Stream one completion. `onPiece` is awaited for every non-empty piece, in
   * order. Resolves with what the stream reported; rejects with a RelayError
   * on an upstream failure. When `signal` aborts, resolves quietly with what
   * arrived so far: the caller knows why it aborted.
   */
  async stream(req: CompletionRequest, signal: AbortSignal, onPiece: (piece: Piece) => void | Promise<void>): Promise<Completion> {
    // A second controller so the idle watchdog can abort without touching the caller's signal.
    const inner = new AbortController();
    const forward = () => inner.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => inner.abort(new RelayError('upstream_timeout', `no data from the model API for ${this.opts.idleTimeoutMs} ms`)),
        this.opts.idleTimeoutMs,
      );
    };
    const result = new ChunkFolder();
    try {
      touch();
      const client = this.client.withOptions({ fetch: watchedFetch(touch) });
      const stream = await client.chat.completions.create(
        {
          model: req.model,
          messages: req.messages,
          stream: true,
          ...(this.opts.includeUsage ? { stream_options: { include_usage: true } } : {}),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
        },
        { signal: inner.signal },
      );
      for await (const chunk of stream) {
        if (inner.signal.aborted) break;
        const piece = result.fold(chunk);
        if (piece) await onPiece(piece);
      }
      if (inner.signal.aborted && !signal.aborted) throw inner.signal.reason;
      return result.completion();
    } catch (err) {
      if (signal.aborted) return result.completion();
      throw upstreamFailure(inner.signal.aborted ? inner.signal.reason : err);
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', forward);
    }
  }
}

/** A fetch whose response body reports every arrival of bytes, so silence can be timed. */
function watchedFetch(onBytes: () => void): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (!res.body) return res;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          onBytes();
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

const FINISH_REASONS: Record<string, Completion['finishReason']> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  content_filter: 'content_filter',
};

/** Folds chunks: returns each chunk's visible piece, remembers the rest for the end. */
class ChunkFolder {
  private finishReason: Completion['finishReason'];
  private usage: UpstreamUsage | undefined;
  private readonly tools = new Map<number, ToolCall>();

  fold(chunk: ChatCompletionChunk): Piece | undefined {
    // Some providers repeat cumulative usage on every chunk: the last one wins.
    if (chunk.usage) {
      this.usage = {
        promptTokens: chunk.usage.prompt_tokens,
        completionTokens: chunk.usage.completion_tokens,
        totalTokens: chunk.usage.total_tokens,
      };
    }
    // The relay asks for one choice; a provider that sends more (n > 1) is read for index 0 only.
    const choice = chunk.choices?.find((c) => c.index === 0);
    if (!choice) return undefined;
    if (choice.finish_reason) this.finishReason = FINISH_REASONS[choice.finish_reason] ?? 'stop';
    const delta = choice.delta;
    if (!delta) return undefined;
    for (const call of delta.tool_calls ?? []) {
      const acc = this.tools.get(call.index) ?? { id: '', name: '', arguments: '' };
      if (call.id) acc.id = call.id;
      if (call.function?.name) acc.name = call.function.name;
      if (call.function?.arguments) acc.arguments += call.function.arguments;
      this.tools.set(call.index, acc);
    }
    const piece: Piece = {};
    if (typeof delta.content === 'string' && delta.content) piece.text = delta.content;
    const reasoning = reasoningOf(delta);
    if (reasoning) piece.reasoning = reasoning;
    if (typeof delta.refusal === 'string' && delta.refusal) piece.refusal = delta.refusal;
    return piece.text || piece.reasoning || piece.refusal ? piece : undefined;
  }

  completion(): Completion {
    const toolCalls = [...this.tools.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
    return { finishReason: this.finishReason, usage: this.usage, toolCalls };
  }
}

/** DeepSeek and vLLM say `reasoning_content`, OpenRouter and others `reasoning`: not in the SDK's types. */
function reasoningOf(delta: object): string | undefined {
  if ('reasoning_content' in delta && typeof delta.reasoning_content === 'string' && delta.reasoning_content) {
    return delta.reasoning_content;
  }
  if ('reasoning' in delta && typeof delta.reasoning === 'string' && delta.reasoning) return delta.reasoning;
  return undefined;
}
