// Anthropic Messages: POST /v1/messages. The reply is a message of content blocks,
// each started, filled with deltas and stopped; message_delta carries the stop
// reason and usage, message_stop ends the stream.
import { z } from 'zod';
import type { FaultPlan, Turn } from '../faultplan.js';
import { textOf, type Part, type Reply } from '../script.js';
import { argumentsText, lenientFlag, named, offeredTools, paced, textContent, toolResultTurn, turnWithCalls, withFiles, type Dialect, type Encoded } from './dialect.js';

// thinking and image blocks carry no text the model reads; tool blocks are read apart.
const blocksText = textContent((t) => t === 'text');
const ToolUse = z.object({ type: z.literal('tool_use'), id: z.string().catch(''), name: z.string().catch(''), input: z.unknown().optional() });
const ToolResult = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().catch(''),
  content: blocksText.nullish().catch(''),
  is_error: z.boolean().nullish().catch(null),
});
const AnthropicRequest = z.object({
  system: blocksText.nullish().catch(null),
  messages: z.array(z.object({ role: z.string().catch(''), content: z.union([z.string(), z.array(z.unknown())]).catch('') })),
  tools: offeredTools((entry) => ({ name: entry.name, description: entry.description, parameters: entry.input_schema })),
  stream: lenientFlag,
  max_tokens: z.unknown().optional(),
});

/** The blocks of `blocks` that `schema` reads, in order. */
const blocksOf = <T>(blocks: unknown[], schema: z.ZodType<T>): T[] =>
  blocks.flatMap((b) => {
    const r = schema.safeParse(b);
    return r.success ? [r.data] : [];
  });

/**
 * One message as turns. Results travel in a user message, yet each is a turn of its own, so that the
 * conversation reads the same as in the OpenAI dialects; text beside them is the user's next turn.
 */
function toTurns(role: string, content: string | unknown[]): Turn[] {
  if (typeof content === 'string') return [{ role, content }];
  const text = blocksText.parse(content);
  if (role === 'assistant') {
    const calls = blocksOf(content, ToolUse).map((u) => ({ id: u.id, name: u.name, arguments: argumentsText(u.input) }));
    return [turnWithCalls(role, text, calls)];
  }
  const results = blocksOf(content, ToolResult).map((r) => toolResultTurn(r.tool_use_id, r.content ?? '', r.is_error));
  return [...results, ...(text || !results.length ? [withFiles({ role, content: text }, content)] : [])];
}

const ERROR_TYPES = new Map([
  [400, 'invalid_request_error'],
  [401, 'authentication_error'],
  [402, 'billing_error'],
  [403, 'permission_error'],
  [404, 'not_found_error'],
  [413, 'request_too_large'],
  [429, 'rate_limit_error'],
  [500, 'api_error'],
  [504, 'timeout_error'],
  [529, 'overloaded_error'],
]);

/** Anthropic's error body: {type:'error', error:{type, message}}. */
function errorBody(status: number, message: string): object {
  const type = ERROR_TYPES.get(status) ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return { type: 'error', error: { type, message } };
}

const STOP_REASONS = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' } as const;

/** Anthropic's tool ids all start with toolu_; a plan's own id is kept inside. */
const toolId = (id: string) => (id.startsWith('toolu_') ? id : `toolu_${id}`);

function toolInput(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

function encode(reply: Reply, plan: FaultPlan): Encoded {
  // Opaque like the real one: clients must hand it back, never read it.
  const signature = Buffer.from(`relay-demo-thinking-${reply.n}`).toString('base64');

  /** A content block as started (`done` false) or as it ends up. */
  function block(part: Part, done: boolean): object {
    const text = done ? textOf(part) : '';
    if (part.kind === 'reasoning') return { type: 'thinking', thinking: text, signature: done ? signature : '' };
    if (part.kind === 'text') return { type: 'text', text };
    return { type: 'tool_use', id: toolId(part.call.id), name: part.call.name, input: done ? toolInput(text) : {} };
  }
  const delta = (index: number, d: object) => named('content_block_delta', { type: 'content_block_delta', index, delta: d });

  const usage = { input_tokens: reply.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const message = {
    id: `msg_demo${reply.n}`,
    type: 'message',
    role: 'assistant',
    model: reply.model,
    content: [] as object[],
    stop_reason: null as string | null,
    stop_sequence: null,
    usage: { ...usage, output_tokens: 1 },
  };
  const body: Encoded['body'] = [
    { sse: named('message_start', { type: 'message_start', message }), counts: false },
    { sse: named('ping', { type: 'ping' }), counts: false },
  ];
  body.push(
    ...paced(reply.parts, {
      open: (part, index) => {
        const start = named('content_block_start', { type: 'content_block_start', index, content_block: block(part, false) });
        // The real API opens every tool input with an empty fragment.
        return part.kind === 'tool' ? [start, delta(index, { type: 'input_json_delta', partial_json: '' })] : [start];
      },
      piece: (part, index, p) =>
        delta(
          index,
          part.kind === 'reasoning'
            ? { type: 'thinking_delta', thinking: p }
            : part.kind === 'text'
              ? { type: 'text_delta', text: p }
              : { type: 'input_json_delta', partial_json: p },
        ),
      close: (part, index) => {
        const stop = named('content_block_stop', { type: 'content_block_stop', index });
        return part.kind === 'reasoning' ? [delta(index, { type: 'signature_delta', signature }), stop] : [stop];
      },
    }),
  );

  const stopReason = STOP_REASONS[reply.finish];
  const tail: string[] = [];
  if (!plan.omitFinishReason) {
    tail.push(
      named('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: reply.outputTokens } }),
    );
    if (!plan.omitDone && !plan.stallAfterFinish) tail.push(named('message_stop', { type: 'message_stop' }));
  }
  return {
    body,
    tail,
    error: () => named('error', { type: 'error', error: { type: plan.errorCode ?? 'api_error', message: 'injected failure' } }),
    // Named, or the SDK would skip it unread as an event without a type.
    malformed: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\n\n',
    json: {
      ...message,
      content: reply.parts.map((part) => block(part, true)),
      stop_reason: stopReason,
      usage: { ...usage, output_tokens: reply.outputTokens },
    },
  };
}

export const anthropic: Dialect = {
  parse(body) {
    const parsed = AnthropicRequest.safeParse(body);
    if (!parsed.success) return { message: 'messages: Input should be a valid list', code: 'invalid_request_error' };
    const r = parsed.data;
    // The one field Anthropic insists on that OpenAI leaves optional.
    if (typeof r.max_tokens !== 'number' || !Number.isInteger(r.max_tokens) || r.max_tokens < 1) {
      return { message: r.max_tokens === undefined ? 'max_tokens: Field required' : 'max_tokens: must be a positive integer', code: 'invalid_request_error' };
    }
    const system: Turn[] = typeof r.system === 'string' ? [{ role: 'system', content: r.system }] : [];
    return {
      messages: [...system, ...r.messages.flatMap((m) => toTurns(m.role, m.content))],
      tools: r.tools,
      stream: r.stream === true,
      budget: r.max_tokens,
      encode,
    };
  },
  errorBody,
};
