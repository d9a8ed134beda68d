// OpenAI `chat.completions` (and every server compatible with it: vLLM,
// Ollama, OpenRouter, DeepSeek, Groq, …). The openai SDK builds and sends the
// request; the chunks are read here, by hand, since this runs once per token.
import type OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { ToolSpec } from '../../../shared/protocol.js';
import { streamErrorEvent } from '../../errors.js';
import { dataUrl, toolOutput, type Dialect, type TurnFile, type EventReader, type Turn } from '../dialect.js';
import { count, isRecord, parseEvent, text, ToolCalls, type Completion, type Piece, type UpstreamFinish, type UpstreamUsage } from '../pieces.js';
import { DONE } from '../read-events.js';
import type { SseEvent } from '../sse.js';

export function chatDialect(client: OpenAI, includeUsage: boolean): Dialect {
  return {
    request: (call, signal) =>
      client.chat.completions
        .create(
          {
            ...call.extra,
            model: call.model,
            messages: call.turns.map(toMessage),
            stream: true,
            ...(call.tools?.length ? { tools: call.tools.map(toTool) } : {}),
            ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
            ...(call.temperature !== undefined ? { temperature: call.temperature } : {}),
            ...(call.maxTokens !== undefined ? { max_tokens: call.maxTokens } : {}),
          },
          { signal },
        )
        .asResponse(),
    reader: () => new ChunkReader(),
  };
}

/** The OpenAI `name` field allows only [A-Za-z0-9_-]{1,64}. */
function speakerName(name: string): string | undefined {
  const cleaned = name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64);
  return cleaned || undefined;
}

function toMessage(turn: Turn): ChatCompletionMessageParam {
  switch (turn.role) {
    case 'system':
      return { role: 'system', content: turn.text };
    case 'user': {
      const name = turn.name ? speakerName(turn.name) : undefined;
      const content = turn.files?.length ? [{ type: 'text' as const, text: turn.text }, ...turn.files.map(toPart)] : turn.text;
      return { role: 'user', content, ...(name ? { name } : {}) };
    }
    case 'assistant':
      if (!turn.toolCalls) return { role: 'assistant', content: turn.text };
      return {
        role: 'assistant',
        content: turn.text || null,
        tool_calls: turn.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: turn.toolCallId, content: toolOutput(turn) };
  }
}

function toPart(file: TurnFile): ChatCompletionContentPart {
  if (file.kind === 'image') return { type: 'image_url', image_url: { url: dataUrl(file) } };
  return { type: 'file', file: { filename: file.name ?? 'document.pdf', file_data: dataUrl(file) } };
}

function toTool(tool: ToolSpec): ChatCompletionTool {
  return { type: 'function', function: { name: tool.name, parameters: tool.parameters, ...(tool.description ? { description: tool.description } : {}) } };
}

const FINISH_REASONS: Record<string, UpstreamFinish> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  content_filter: 'content_filter',
};

/** Reads chunks: returns each one's visible pieces, remembers the rest for the end. */
class ChunkReader implements EventReader {
  private finishReason: UpstreamFinish | undefined;
  private usage: UpstreamUsage | undefined;
  private readonly tools = new ToolCalls();
  /** The chat `index` each call's pieces carry → its position in `tools`. */
  private readonly byIndex = new Map<number, number>();

  read(event: SseEvent): Piece | Piece[] | undefined | typeof DONE {
    if (event.data === '[DONE]') return DONE;
    const chunk = parseEvent(event.data);
    // Some providers repeat cumulative usage on every chunk: the last one wins.
    if (isRecord(chunk.usage)) this.usage = readUsage(chunk.usage) ?? this.usage;
    // An error comes as `event: error` or as a chunk with an `error` field; its usage (above) still counts.
    if (event.event === 'error' || chunk.error) throw streamErrorEvent(isRecord(chunk.error) ? chunk.error : chunk);
    const choice = firstChoice(chunk.choices);
    if (!choice) return undefined;
    const finish = text(choice.finish_reason);
    if (finish) this.finishReason = FINISH_REASONS[finish] ?? 'stop';
    const delta = choice.delta;
    if (!isRecord(delta)) return undefined;
    const piece: Piece = {};
    const content = text(delta.content);
    if (content) piece.text = content;
    // DeepSeek and vLLM say `reasoning_content`, OpenRouter and others `reasoning`.
    const reasoning = text(delta.reasoning_content) ?? text(delta.reasoning);
    if (reasoning) piece.reasoning = reasoning;
    const refusal = text(delta.refusal);
    if (refusal) piece.refusal = refusal;
    // Nearly every chunk is one piece of text: no array is made for it.
    const calls = Array.isArray(delta.tool_calls) ? this.readToolCalls(delta.tool_calls) : undefined;
    if (!calls?.length) return piece.text || piece.reasoning || piece.refusal ? piece : undefined;
    piece.toolCall = calls[0];
    return [piece, ...calls.slice(1).map((toolCall) => ({ toolCall }))];
  }

  private readToolCalls(list: unknown[]): NonNullable<Piece['toolCall']>[] {
    const pieces: NonNullable<Piece['toolCall']>[] = [];
    for (const call of list) {
      if (!isRecord(call)) continue;
      const fn = isRecord(call.function) ? call.function : {};
      const id = text(call.id);
      const piece = this.tools.grow(this.callOf(count(call.index), id), id, text(fn.name), text(fn.arguments));
      if (piece) pieces.push(piece);
    }
    return pieces;
  }

  /**
   * OpenAI numbers the calls with `index` and names each once with `id`;
   * other providers leave `index` out and send each call whole, or give every
   * call index 0. So a piece with an id not seen on the call it would join
   * begins a new call, and a piece with neither continues the last call.
   */
  private callOf(index: number | undefined, id: string | undefined): number {
    const current = index === undefined ? this.tools.length - 1 : (this.byIndex.get(index) ?? -1);
    const call = this.tools.at(current);
    if (call && (id === undefined || call.id === '' || call.id === id)) return current;
    const opened = this.tools.open();
    if (index !== undefined) this.byIndex.set(index, opened);
    return opened;
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  completion(): Completion {
    return { finishReason: this.finishReason, usage: this.usage, toolCalls: this.tools.list() };
  }
}

/** The relay asks for one choice; a provider that sends more (n > 1) is read for index 0 only. */
function firstChoice(choices: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(choices)) return undefined;
  const list: unknown[] = choices;
  for (const c of list) if (isRecord(c) && (c.index ?? 0) === 0) return c;
  return undefined;
}

function readUsage(usage: Record<string, unknown>): UpstreamUsage | undefined {
  const promptTokens = count(usage.prompt_tokens);
  const completionTokens = count(usage.completion_tokens);
  const totalTokens = count(usage.total_tokens);
  if (promptTokens === undefined || completionTokens === undefined || totalTokens === undefined) return undefined;
  const cached = isRecord(usage.prompt_tokens_details) ? count(usage.prompt_tokens_details.cached_tokens) : undefined;
  const reasoning = isRecord(usage.completion_tokens_details) ? count(usage.completion_tokens_details.reasoning_tokens) : undefined;
  return {
    promptTokens,
    completionTokens,
    totalTokens,
    ...(cached !== undefined ? { cachedTokens: cached } : {}),
    ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {}),
  };
}
