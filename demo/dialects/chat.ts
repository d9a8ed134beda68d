// OpenAI Chat Completions: POST /v1/chat/completions.
import { z } from 'zod';
import type { FaultPlan, Turn } from '../faultplan.js';
import { textOf, type Reply } from '../script.js';
import {
  argumentsText,
  budgetOf,
  lenientFlag,
  lenientNumber,
  offeredTools,
  openaiError,
  paced,
  textContent,
  toolResultTurn,
  turnWithCalls,
  withFiles,
  type Dialect,
  type Encoded,
} from './dialect.js';

const ChatToolCall = z
  .object({ id: z.string().catch(''), function: z.object({ name: z.string().catch(''), arguments: z.unknown().optional() }) })
  .nullable()
  .catch(null);

// Text parts are read whatever their type says; images and files apart (filesIn).
const contentText = textContent(() => true).nullish().catch('');

const ChatMessage = z.object({
  role: z.string().catch(''),
  content: z.unknown(),
  name: z.string().optional().catch(undefined),
  tool_calls: z.array(ChatToolCall).nullish().catch(null),
  tool_call_id: z.string().nullish().catch(null),
});

const ChatRequest = z.object({
  messages: z.array(ChatMessage),
  tools: offeredTools((entry) => entry.function),
  stream: lenientFlag,
  stream_options: z.object({ include_usage: z.boolean().nullish().catch(false) }).nullish().catch(null),
  max_tokens: lenientNumber,
  max_completion_tokens: lenientNumber,
});

function toTurn(m: z.infer<typeof ChatMessage>): Turn {
  const named = m.name !== undefined ? { name: m.name } : {};
  const text = contentText.parse(m.content) ?? '';
  if (m.role === 'tool') return { ...toolResultTurn(m.tool_call_id ?? '', text), ...named };
  const calls = m.role === 'assistant' ? (m.tool_calls ?? []) : [];
  const toolCalls = calls.flatMap((c) => (c ? [{ id: c.id, name: c.function.name, arguments: argumentsText(c.function.arguments) }] : []));
  return withFiles({ ...turnWithCalls(m.role, text, toolCalls), ...named }, m.content);
}

function encode(reply: Reply, plan: FaultPlan, includeUsage: boolean): Encoded {
  const head = { id: `chatcmpl-demo${reply.n}`, created: reply.created, model: reply.model };
  const event = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ id: head.id, object: 'chat.completion.chunk', created: head.created, model: head.model, choices, ...extra })}\n\n`;
  const chunk = (delta: object, finish: string | null = null) => event([{ index: 0, delta, finish_reason: finish }]);

  const tools = reply.parts.flatMap((p) => (p.kind === 'tool' ? [p.call] : []));
  // Tool calls come last among the parts, and chat numbers them from 0 among themselves.
  const toolIndex = (partIndex: number) => partIndex - (reply.parts.length - tools.length);
  const body: Encoded['body'] = [{ sse: chunk({ role: 'assistant', content: '' }), counts: false }];
  body.push(
    ...paced(reply.parts, {
      open: (part, index) => {
        if (part.kind !== 'tool') return [];
        const call = { index: toolIndex(index), id: part.call.id, type: 'function', function: { name: part.call.name, arguments: '' } };
        return [chunk({ tool_calls: [call] })];
      },
      piece: (part, index, p) => {
        if (part.kind === 'reasoning') return chunk({ reasoning_content: p });
        if (part.kind === 'text') return chunk({ content: p });
        return chunk({ tool_calls: [{ index: toolIndex(index), function: { arguments: p } }] });
      },
      close: () => [],
    }),
  );

  const usage = { prompt_tokens: reply.inputTokens, completion_tokens: reply.outputTokens, total_tokens: reply.inputTokens + reply.outputTokens };
  const tail: string[] = [];
  if (!plan.omitFinishReason) tail.push(chunk({}, reply.finish));
  if (includeUsage) tail.push(event([], { usage }));
  if (!plan.omitDone && !plan.stallAfterFinish) tail.push('data: [DONE]\n\n');

  const reasoning = reply.parts.find((p) => p.kind === 'reasoning');
  const text = reply.parts.find((p) => p.kind === 'text');
  const message = {
    role: 'assistant',
    content: text ? textOf(text) : '',
    ...(reasoning ? { reasoning_content: textOf(reasoning) } : {}),
    ...(tools.length ? { tool_calls: tools.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
  };
  const error = { message: 'injected failure', type: 'server_error', code: plan.errorCode ?? 'injected' };
  return {
    body,
    tail,
    error: () => `data: ${JSON.stringify({ error })}\n\n`,
    malformed: 'data: {"choices":[{"delta":{"content":\n\n',
    json: { ...head, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: reply.finish }], usage },
  };
}

export const chat: Dialect = {
  parse(body) {
    const parsed = ChatRequest.safeParse(body);
    if (!parsed.success) return { message: '`messages` must be an array', code: 'invalid_messages' };
    const r = parsed.data;
    const includeUsage = r.stream_options?.include_usage === true;
    return {
      messages: r.messages.map(toTurn),
      tools: r.tools,
      stream: r.stream === true,
      budget: budgetOf(r.max_completion_tokens, r.max_tokens),
      encode: (reply, plan) => encode(reply, plan, includeUsage),
    };
  },
  errorBody: openaiError,
};
