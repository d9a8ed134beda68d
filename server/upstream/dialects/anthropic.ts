// Anthropic's Messages API (`POST /v1/messages`). The @anthropic-ai/sdk builds
// and sends the request (auth headers, API version, typed errors, retries
// before the first byte); the events are read here. Only text, thinking,
// redacted thinking and client tool_use blocks are relayed: server tools, their
// results, citations and any block type added later are skipped.
import type Anthropic from '@anthropic-ai/sdk';
import { streamErrorEvent } from '../../errors.js';
import type { ToolCall, ToolSpec } from '../../../shared/protocol.js';
import { labelSpeakers, systemPrompt, type Dialect, type TurnFile, type EventReader, type Turn, type UpstreamCall } from '../dialect.js';
import { count, isRecord, parseEvent, text, ToolCalls, type Completion, type Piece, type UpstreamFinish, type UpstreamUsage } from '../pieces.js';
import { DONE } from '../read-events.js';
import type { SseEvent } from '../sse.js';

/** Anthropic requires a cap on every call; this one applies when neither the route nor the sender sets one. */
const DEFAULT_MAX_TOKENS = 4096;

export function anthropicDialect(client: Anthropic): Dialect {
  return {
    request: (call, signal) => client.messages.create(requestBody(call), { signal }).asResponse(),
    reader: () => new MessagesReader(),
  };
}

function requestBody(call: UpstreamCall): Anthropic.MessageCreateParamsStreaming {
  const said = labelSpeakers(call.turns);
  const messages = toMessages(call.turns, said);
  const system = systemPrompt(call.turns);
  return {
    max_tokens: DEFAULT_MAX_TOKENS,
    ...call.extra,
    model: call.model,
    messages,
    stream: true,
    ...(system ? { system } : {}),
    ...(call.tools?.length ? { tools: call.tools.map(toTool) } : {}),
    // Anthropic's temperature runs 0–1, the protocol's 0–2.
    ...(call.temperature !== undefined ? { temperature: Math.min(call.temperature, 1) } : {}),
    ...(call.maxTokens !== undefined ? { max_tokens: call.maxTokens } : {}),
  };
}

/**
 * Turns as Anthropic messages. A tool call is a `tool_use` block of the
 * assistant's message; its result a `tool_result` block of the next user
 * message, which holds all the results of that turn, before any text.
 */
function toMessages(turns: readonly Turn[], said: (turn: Turn) => string): Anthropic.MessageParam[] {
  const messages: Anthropic.MessageParam[] = [];
  for (const turn of turns) {
    if (turn.role === 'system') continue;
    if (turn.role === 'user') messages.push({ role: 'user', content: turn.files?.length ? [...turn.files.map(toBlock), { type: 'text', text: said(turn) }] : said(turn) });
    else if (turn.role === 'assistant') messages.push({ role: 'assistant', content: assistantContent(turn.text, turn.toolCalls ?? []) });
    else {
      const block: Anthropic.ToolResultBlockParam = { type: 'tool_result', tool_use_id: turn.toolCallId, content: turn.text, ...(turn.isError ? { is_error: true } : {}) };
      const last = messages.at(-1);
      if (last?.role === 'user' && Array.isArray(last.content)) last.content.push(block);
      else messages.push({ role: 'user', content: [block] });
    }
  }
  return messages;
}

/** Anthropic reads images and documents best placed before the text about them. */
function toBlock(file: TurnFile): Anthropic.ImageBlockParam | Anthropic.DocumentBlockParam {
  const data = file.data.toString('base64');
  if (file.kind === 'pdf') return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data }, ...(file.name ? { title: file.name } : {}) };
  return { type: 'image', source: { type: 'base64', media_type: imageType(file.mediaType), data } };
}

function imageType(mediaType: string): Anthropic.Base64ImageSource['media_type'] {
  switch (mediaType) {
    case 'image/png':
    case 'image/gif':
    case 'image/webp':
      return mediaType;
    default:
      return 'image/jpeg';
  }
}

function assistantContent(text: string, calls: readonly ToolCall[]): string | Anthropic.ContentBlockParam[] {
  if (calls.length === 0) return text;
  const uses = calls.map((c): Anthropic.ToolUseBlockParam => ({ type: 'tool_use', id: c.id, name: c.name, input: toolInput(c.arguments) }));
  return text ? [{ type: 'text', text }, ...uses] : uses;
}

/** Anthropic wants a call's input as an object; arguments cut short (a reply ended by `length`) stand as an empty one. */
function toolInput(args: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(args);
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
}

function toTool(tool: ToolSpec): Anthropic.Tool {
  return {
    name: tool.name,
    input_schema: { type: 'object', ...tool.parameters },
    ...(tool.description ? { description: tool.description } : {}),
  };
}

const STOP_REASONS: Record<string, UpstreamFinish> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

type Block = { kind: 'text' | 'thinking' | 'skip' } | { kind: 'tool'; call: number; gotArguments: boolean };

/** Reads Messages events into pieces, by the kind of block each delta belongs to. */
class MessagesReader implements EventReader {
  private finishReason: UpstreamFinish | undefined;
  private readonly usage: Record<string, number> = {};
  private readonly tools = new ToolCalls();
  private readonly blocks = new Map<number, Block>();

  read(event: SseEvent): Piece | undefined | typeof DONE {
    const e = parseEvent(event.data);
    switch (e.type) {
      case 'message_start':
        if (isRecord(e.message)) this.addUsage(e.message.usage);
        return undefined;
      case 'content_block_start':
        return this.blockStart(count(e.index), e.content_block);
      case 'content_block_delta':
        return this.blockDelta(count(e.index), e.delta);
      case 'content_block_stop':
        return this.blockStop(count(e.index));
      case 'message_delta':
        // Its usage is cumulative: each key it gives replaces the one message_start gave.
        this.addUsage(e.usage);
        if (isRecord(e.delta) && typeof e.delta.stop_reason === 'string') this.finishReason = STOP_REASONS[e.delta.stop_reason] ?? 'stop';
        return undefined;
      case 'message_stop':
        return DONE;
      case 'error':
        throw streamErrorEvent(isRecord(e.error) ? e.error : undefined);
      default:
        return undefined;
    }
  }

  private blockStart(index: number | undefined, block: unknown): Piece | undefined {
    if (index === undefined || !isRecord(block)) return undefined;
    if (block.type === 'text') this.blocks.set(index, { kind: 'text' });
    else if (block.type === 'thinking') this.blocks.set(index, { kind: 'thinking' });
    else if (block.type !== 'tool_use') this.blocks.set(index, { kind: 'skip' });
    else {
      const call = this.tools.open();
      this.blocks.set(index, { kind: 'tool', call, gotArguments: false });
      const toolCall = this.tools.grow(call, text(block.id), text(block.name), undefined);
      return toolCall && { toolCall };
    }
    // A block may open with text already in it (rare, but the API allows it).
    const first = text(block.text) ?? text(block.thinking);
    if (!first) return undefined;
    return block.type === 'text' ? { text: first } : { reasoning: first };
  }

  private blockDelta(index: number | undefined, delta: unknown): Piece | undefined {
    const block = index === undefined ? undefined : this.blocks.get(index);
    if (!block || !isRecord(delta)) return undefined;
    if (block.kind === 'text' && delta.type === 'text_delta') {
      const value = text(delta.text);
      return value ? { text: value } : undefined;
    }
    // A signature_delta seals the thinking for the provider's next turn; it is never shown.
    if (block.kind === 'thinking' && delta.type === 'thinking_delta') {
      const value = text(delta.thinking);
      return value ? { reasoning: value } : undefined;
    }
    if (block.kind === 'tool' && delta.type === 'input_json_delta') {
      const toolCall = this.tools.grow(block.call, undefined, undefined, text(delta.partial_json));
      if (toolCall) block.gotArguments = true;
      return toolCall && { toolCall };
    }
    return undefined;
  }

  /** A tool called without input streams no JSON at all: its arguments are the empty object. */
  private blockStop(index: number | undefined): Piece | undefined {
    const block = index === undefined ? undefined : this.blocks.get(index);
    if (block?.kind !== 'tool' || block.gotArguments) return undefined;
    block.gotArguments = true;
    const toolCall = this.tools.grow(block.call, undefined, undefined, '{}');
    return toolCall && { toolCall };
  }

  private addUsage(usage: unknown): void {
    if (!isRecord(usage)) return;
    for (const key of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens']) {
      const n = count(usage[key]);
      if (n !== undefined) this.usage[key] = n;
    }
  }

  /** Anthropic counts cached input apart from `input_tokens`; the prompt is all of it. */
  private upstreamUsage(): UpstreamUsage | undefined {
    const u = this.usage;
    if (u.input_tokens === undefined || u.output_tokens === undefined) return undefined;
    const cached = u.cache_read_input_tokens ?? 0;
    const promptTokens = u.input_tokens + cached + (u.cache_creation_input_tokens ?? 0);
    return { promptTokens, completionTokens: u.output_tokens, totalTokens: promptTokens + u.output_tokens, cachedTokens: cached };
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  completion(): Completion {
    return { finishReason: this.finishReason, usage: this.upstreamUsage(), toolCalls: this.tools.list() };
  }
}
