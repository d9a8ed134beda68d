// OpenAI Responses: POST /v1/responses. Every event is named and numbered, each
// output item is announced, filled and closed, and a terminal response.* event
// stands where Chat Completions has its finish chunk and [DONE].
import { z } from 'zod';
import { isRecord } from '../../server/upstream/pieces.js';
import type { FaultPlan, Turn } from '../faultplan.js';
import { textOf, type Part, type Reply } from '../script.js';
import {
  argumentsText,
  budgetOf,
  lenientFlag,
  lenientNumber,
  named,
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

const itemText = textContent((t) => t === 'input_text' || t === 'output_text');
const FunctionCall = z.object({ type: z.literal('function_call'), call_id: z.string().catch(''), name: z.string().catch(''), arguments: z.unknown().optional() });
const FunctionCallOutput = z.object({ type: z.literal('function_call_output'), call_id: z.string().catch(''), output: itemText.catch('') });
// Other items without a role (reasoning, built-in tool calls…) say nothing the model reads.
const Message = z.object({ role: z.string(), content: z.unknown() });
const Item = z.union([FunctionCall, FunctionCallOutput, Message]).nullable().catch(null);
const ResponsesRequest = z.object({
  input: z.union([z.string(), z.array(Item)]),
  instructions: z.string().nullish().catch(null),
  tools: offeredTools((entry) => entry),
  stream: lenientFlag,
  max_output_tokens: lenientNumber,
  // Background mode: the response runs on whether or not its connection stays (demo/background.ts).
  background: lenientFlag,
  store: lenientFlag, // the API's default is true, so only an explicit false refuses background mode
});
type ResponsesRequest = z.infer<typeof ResponsesRequest>;

/** The turn an item adds, if any; a function_call joins the assistant turn it follows, as both come from one response. */
function addItem(turns: Turn[], item: z.infer<typeof Item>): void {
  if (!item) return;
  if ('output' in item) return void turns.push(toolResultTurn(item.call_id, item.output));
  if (!('call_id' in item)) return void turns.push(withFiles({ role: item.role, content: itemText.catch('').parse(item.content) }, item.content));
  const call = { id: item.call_id, name: item.name, arguments: argumentsText(item.arguments) };
  const last = turns.at(-1);
  if (last?.role === 'assistant') last.toolCalls = [...(last.toolCalls ?? []), call];
  else turns.push(turnWithCalls('assistant', '', [call]));
}

function toMessages(r: ResponsesRequest): Turn[] {
  const turns: Turn[] = typeof r.instructions === 'string' ? [{ role: 'system', content: r.instructions }] : [];
  if (typeof r.input === 'string') return [...turns, { role: 'user', content: r.input }];
  for (const item of r.input) addItem(turns, item);
  return turns;
}

/** The id of the response to request `n`; record ids are unique per model, so these are too. */
export const responseId = (n: number): string => `resp_demo${n}`;

/** Does a (valid) Responses request body ask for background mode? */
export const wantsBackground = (body: unknown): boolean => isRecord(body) && body.background === true;

function encode(reply: Reply, plan: FaultPlan, request: ResponsesRequest): Encoded {
  const n = reply.n;
  const background = request.background === true;
  const last = reply.parts.length - 1;
  const itemId = (part: Part, index: number) => (part.kind === 'reasoning' ? `rs_demo${n}` : part.kind === 'text' ? `msg_demo${n}` : `fc_demo${n}_${index}`);
  const outputText = (text: string) => ({ type: 'output_text', annotations: [], logprobs: [], text });
  const summaryText = (text: string) => ({ type: 'summary_text', text });

  /** An output item as announced (`done` false) or as closed. */
  function item(part: Part, index: number, done: boolean): object {
    const id = itemId(part, index);
    const text = done ? textOf(part) : '';
    if (part.kind === 'reasoning') return { id, type: 'reasoning', summary: done ? [summaryText(text)] : [] };
    const status = !done ? 'in_progress' : reply.truncated && index === last ? 'incomplete' : 'completed';
    if (part.kind === 'text') return { id, type: 'message', status, content: done ? [outputText(text)] : [], role: 'assistant' };
    return { id, type: 'function_call', status, arguments: text, call_id: part.call.id, name: part.call.name };
  }

  const response = (status: string, extra: object = {}) => ({
    id: responseId(n),
    object: 'response',
    created_at: reply.created,
    status,
    background,
    error: null,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model: reply.model,
    output: [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: background,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: null,
    metadata: {},
    ...extra,
  });

  let seq = 0;
  const event = (type: string, data: object) => named(type, { type, sequence_number: seq++, ...data });
  // The item's place in the output and, for delta events, in the item.
  const at = (part: Part, index: number) => ({
    item_id: itemId(part, index),
    output_index: index,
    ...(part.kind === 'reasoning' ? { summary_index: 0 } : part.kind === 'text' ? { content_index: 0 } : {}),
  });

  // A background response starts queued (the API's `response.queued`: waiting to be processed), then runs.
  const body: Encoded['body'] = background
    ? [
        { sse: event('response.created', { response: response('queued') }), counts: false },
        { sse: event('response.queued', { response: response('queued') }), counts: false },
      ]
    : [{ sse: event('response.created', { response: response('in_progress') }), counts: false }];
  body.push({ sse: event('response.in_progress', { response: response('in_progress') }), counts: false });
  body.push(
    ...paced(reply.parts, {
      open: (part, index) => {
        const added = event('response.output_item.added', { output_index: index, item: item(part, index, false) });
        if (part.kind === 'reasoning') return [added, event('response.reasoning_summary_part.added', { ...at(part, index), part: summaryText('') })];
        if (part.kind === 'text') return [added, event('response.content_part.added', { ...at(part, index), part: outputText('') })];
        return [added];
      },
      piece: (part, index, delta) => {
        if (part.kind === 'reasoning') return event('response.reasoning_summary_text.delta', { ...at(part, index), delta });
        if (part.kind === 'text') return event('response.output_text.delta', { ...at(part, index), delta, logprobs: [] });
        return event('response.function_call_arguments.delta', { ...at(part, index), delta });
      },
      close: (part, index) => {
        const text = textOf(part);
        const closing =
          part.kind === 'reasoning'
            ? [
                event('response.reasoning_summary_text.done', { ...at(part, index), text }),
                event('response.reasoning_summary_part.done', { ...at(part, index), part: summaryText(text) }),
              ]
            : part.kind === 'text'
              ? [
                  event('response.output_text.done', { ...at(part, index), text, logprobs: [] }),
                  event('response.content_part.done', { ...at(part, index), part: outputText(text) }),
                ]
              : [event('response.function_call_arguments.done', { ...at(part, index), arguments: text })];
        return [...closing, event('response.output_item.done', { output_index: index, item: item(part, index, true) })];
      },
    }),
  );

  const output = reply.parts.map((part, index) => item(part, index, true));
  const usage = {
    input_tokens: reply.inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: reply.outputTokens,
    output_tokens_details: { reasoning_tokens: reply.reasoningTokens },
    total_tokens: reply.inputTokens + reply.outputTokens,
  };
  const final = reply.truncated
    ? response('incomplete', { incomplete_details: { reason: 'max_output_tokens' }, output, usage })
    : response('completed', { output, usage });
  // The terminal event is both the finish and the end of a Responses stream.
  const tail = plan.omitDone || plan.omitFinishReason ? [] : [event(reply.truncated ? 'response.incomplete' : 'response.completed', { response: final })];

  const code = plan.errorCode ?? 'server_error';
  const message = 'injected failure';
  return {
    body,
    tail,
    // Numbered on from the events already out, as the real stream would be.
    error: (sent) =>
      named('error', { type: 'error', code, message, param: null, sequence_number: sent }) +
      named('response.failed', { type: 'response.failed', sequence_number: sent + 1, response: response('failed', { error: { code, message } }) }),
    malformed: 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":\n\n',
    json: final,
  };
}

export const responses: Dialect = {
  parse(body) {
    const parsed = ResponsesRequest.safeParse(body);
    if (!parsed.success) return { message: '`input` must be a string or an array of items', code: 'invalid_input' };
    const r = parsed.data;
    if (r.background === true && r.store === false) return { message: 'Background mode requires store=true.', code: 'invalid_value' };
    return {
      messages: toMessages(r),
      tools: r.tools,
      stream: r.stream === true,
      budget: budgetOf(r.max_output_tokens),
      encode: (reply, plan) => encode(reply, plan, r),
    };
  },
  errorBody: openaiError,
};
