// OpenAI's Responses API (`POST /v1/responses`, also served by vLLM, Ollama,
// LM Studio and OpenRouter). The openai SDK builds and sends the request; the
// typed events are read here. The type is taken from each payload's `type`:
// some servers send no `event:` lines at all.
import type OpenAI from 'openai';
import type { ResponseInputContent, ResponseInputItem } from 'openai/resources/responses/responses';
import { streamErrorEvent } from '../../errors.js';
import type { ToolSpec } from '../../../shared/protocol.js';
import { dataUrl, labelSpeakers, systemPrompt, toolOutput, type Dialect, type TurnFile, type EventReader, type Turn, type UpstreamCall } from '../dialect.js';
import { count, isRecord, parseEvent, text, ToolCalls, type Completion, type Piece, type UpstreamCursor, type UpstreamFinish, type UpstreamUsage } from '../pieces.js';
import { DONE } from '../read-events.js';
import type { SseEvent } from '../sse.js';

/** One try at stopping a background response; the router tries again a few times. */
const CANCEL_TIMEOUT_MS = 5_000;

export function responsesDialect(client: OpenAI): Dialect {
  return {
    request: (call, signal) => client.responses.create(requestBody(call), { signal }).asResponse(),
    reader: (from) => new ResponsesReader(from),
    background: {
      reattach: (cursor, signal) => client.responses.retrieve(cursor.responseId, { stream: true, starting_after: cursor.sequence }, { signal }).asResponse(),
      cancel: async (responseId) => void (await client.responses.cancel(responseId, { timeout: CANCEL_TIMEOUT_MS, maxRetries: 0 })),
    },
  };
}

function requestBody(call: UpstreamCall): OpenAI.Responses.ResponseCreateParamsStreaming {
  const said = labelSpeakers(call.turns);
  const input = call.turns.flatMap((turn) => toItems(turn, said));
  const instructions = systemPrompt(call.turns);
  return {
    // The relay keeps the conversation; the provider need not store a copy (a route's options may still ask it to).
    store: false,
    ...call.extra,
    model: call.model,
    input,
    stream: true,
    ...(instructions ? { instructions } : {}),
    ...(call.tools?.length ? { tools: call.tools.map(toTool) } : {}),
    ...(call.temperature !== undefined ? { temperature: call.temperature } : {}),
    ...(call.maxTokens !== undefined ? { max_output_tokens: call.maxTokens } : {}),
    // A background response must be stored; it runs on at the provider until it ends or is cancelled.
    ...(call.background ? { background: true, store: true } : {}),
  };
}

/** A turn as Responses input items: a tool call and its output are items of their own. */
function toItems(turn: Turn, said: (turn: Turn) => string): ResponseInputItem[] {
  switch (turn.role) {
    case 'system':
      return [];
    case 'user':
      if (!turn.files?.length) return [{ role: 'user', content: said(turn) }];
      return [{ role: 'user', content: [{ type: 'input_text', text: said(turn) }, ...turn.files.map(toInput)] }];
    case 'assistant': {
      const calls: ResponseInputItem[] = (turn.toolCalls ?? []).map((c) => ({ type: 'function_call', call_id: c.id, name: c.name, arguments: c.arguments }));
      return turn.text ? [{ role: 'assistant', content: turn.text }, ...calls] : calls;
    }
    case 'tool':
      return [{ type: 'function_call_output', call_id: turn.toolCallId, output: toolOutput(turn) }];
  }
}

function toInput(file: TurnFile): ResponseInputContent {
  if (file.kind === 'image') return { type: 'input_image', image_url: dataUrl(file), detail: 'auto' };
  return { type: 'input_file', filename: file.name ?? 'document.pdf', file_data: dataUrl(file) };
}

function toTool(tool: ToolSpec): OpenAI.Responses.FunctionTool {
  return { type: 'function', name: tool.name, parameters: tool.parameters, strict: false, ...(tool.description ? { description: tool.description } : {}) };
}

/** Reads Responses events; only text, reasoning, refusal, function calls and the ending matter, the rest is skipped. */
class ResponsesReader implements EventReader {
  private finishReason: UpstreamFinish | undefined;
  private usage: UpstreamUsage | undefined;
  private readonly tools = new ToolCalls();
  /** A function_call item's id → its position in `tools`. */
  private readonly calls = new Map<string, number>();
  /** Calls that got argument deltas: their `.done` must not add the arguments again. */
  private readonly streamed = new Set<number>();
  /** Where the last reasoning came from: a new summary part starts a new paragraph. */
  private reasoningPart: string | undefined;
  /** The response's id (from `response.created`, or the one re-attached to) and the last sequence number read. */
  private responseId: string | undefined;
  private sequence = -1;

  constructor(from?: UpstreamCursor) {
    if (from) ({ responseId: this.responseId, sequence: this.sequence } = from);
  }

  get cursor(): UpstreamCursor | undefined {
    return this.responseId === undefined ? undefined : { responseId: this.responseId, sequence: this.sequence };
  }

  read(event: SseEvent): Piece | undefined | typeof DONE {
    // OpenRouter ends its Responses streams with the chat-style sentinel.
    if (event.data === '[DONE]') return DONE;
    const e = parseEvent(event.data);
    const sequence = count(e.sequence_number);
    if (sequence !== undefined) this.sequence = sequence;
    switch (e.type) {
      case 'response.created':
        this.responseId = isRecord(e.response) ? text(e.response.id) : undefined;
        return undefined;
      case 'response.output_text.delta':
        return this.piece('text', e.delta);
      case 'response.refusal.delta':
        return this.piece('refusal', e.delta);
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_text.delta':
        return this.reasoning(e);
      case 'response.output_item.added':
        return this.itemAdded(e.item);
      case 'response.function_call_arguments.delta':
        return this.argumentsDelta(e);
      case 'response.function_call_arguments.done':
        return this.argumentsDone(text(e.item_id), text(e.arguments));
      case 'response.output_item.done':
        return isRecord(e.item) ? this.argumentsDone(text(e.item.id), text(e.item.arguments)) : undefined;
      case 'response.completed':
        return this.end(e.response, this.tools.length ? 'tool_calls' : 'stop');
      case 'response.incomplete':
        return this.end(e.response, incompleteReason(e.response));
      case 'response.failed':
        this.usage = this.usageOf(e.response) ?? this.usage;
        throw streamErrorEvent(isRecord(e.response) && isRecord(e.response.error) ? e.response.error : undefined);
      case 'error':
        throw streamErrorEvent(isRecord(e.error) ? e.error : e);
      default:
        return undefined;
    }
  }

  private piece(kind: 'text' | 'refusal', delta: unknown): Piece | undefined {
    const value = text(delta);
    return value ? { [kind]: value } : undefined;
  }

  private reasoning(e: Record<string, unknown>): Piece | undefined {
    const value = text(e.delta);
    if (!value) return undefined;
    const part = `${String(e.item_id)}/${String(e.summary_index ?? e.content_index ?? 0)}`;
    const opensParagraph = this.reasoningPart !== undefined && this.reasoningPart !== part;
    this.reasoningPart = part;
    return { reasoning: opensParagraph ? `\n\n${value}` : value };
  }

  private itemAdded(item: unknown): Piece | undefined {
    if (!isRecord(item) || item.type !== 'function_call') return undefined;
    const index = this.tools.open();
    const itemId = text(item.id);
    if (itemId) this.calls.set(itemId, index);
    const args = text(item.arguments);
    if (args) this.streamed.add(index);
    const toolCall = this.tools.grow(index, text(item.call_id), text(item.name), args);
    return toolCall && { toolCall };
  }

  private argumentsDelta(e: Record<string, unknown>): Piece | undefined {
    const index = this.calls.get(String(e.item_id));
    const args = text(e.delta);
    if (index === undefined || !args) return undefined;
    this.streamed.add(index);
    const toolCall = this.tools.grow(index, undefined, undefined, args);
    return toolCall && { toolCall };
  }

  /** Some servers send a call's arguments only whole, at its end. */
  private argumentsDone(itemId: string | undefined, args: string | undefined): Piece | undefined {
    const index = itemId === undefined ? undefined : this.calls.get(itemId);
    if (index === undefined || !args || this.streamed.has(index)) return undefined;
    this.streamed.add(index);
    const toolCall = this.tools.grow(index, undefined, undefined, args);
    return toolCall && { toolCall };
  }

  private end(response: unknown, finish: UpstreamFinish): typeof DONE {
    this.finishReason = finish;
    this.usage = this.usageOf(response) ?? this.usage;
    return DONE;
  }

  private usageOf(response: unknown): UpstreamUsage | undefined {
    if (!isRecord(response) || !isRecord(response.usage)) return undefined;
    const u = response.usage;
    const promptTokens = count(u.input_tokens);
    const completionTokens = count(u.output_tokens);
    if (promptTokens === undefined || completionTokens === undefined) return undefined;
    const cached = isRecord(u.input_tokens_details) ? count(u.input_tokens_details.cached_tokens) : undefined;
    const reasoning = isRecord(u.output_tokens_details) ? count(u.output_tokens_details.reasoning_tokens) : undefined;
    return {
      promptTokens,
      completionTokens,
      totalTokens: count(u.total_tokens) ?? promptTokens + completionTokens,
      ...(cached !== undefined ? { cachedTokens: cached } : {}),
      ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {}),
    };
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  completion(): Completion {
    const cursor = this.cursor;
    return { finishReason: this.finishReason, usage: this.usage, toolCalls: this.tools.list(), ...(cursor ? { cursor } : {}) };
  }
}

function incompleteReason(response: unknown): UpstreamFinish {
  const details = isRecord(response) && isRecord(response.incomplete_details) ? response.incomplete_details : {};
  return details.reason === 'content_filter' ? 'content_filter' : 'length';
}
