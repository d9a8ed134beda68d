// The relay against each upstream dialect (chat.completions, the Responses
// API, Anthropic Messages), all spoken by the built-in model over real HTTP:
// the same conversation, the same faults, the same protocol frames out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan, RecordedRequest } from '../../demo/localmodel.js';
import type { ErrorCode } from '../../shared/codes.js';
import type { ServerFrameOf, ToolCall } from '../../shared/protocol.js';
import { DIALECTS, type DialectName } from '../../server/upstream/dialect.js';
import { eventually, replyText, startStack, type Stack, type TestClient } from '../helpers.js';

const TEXT = 'alpha beta gamma delta epsilon zeta eta theta';
// The idle timeout is also how long a request may take to begin: long enough for a loaded machine, short enough for the stall test.
const ENV = { UPSTREAM_IDLE_TIMEOUT_MS: '1500', REPLY_MAX_MS: '10000', UPSTREAM_MAX_RETRIES: '0', SYSTEM_PROMPT: 'Be brief.' };
const CALLS: ToolCall[] = [
  { id: 'call_a1', name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' },
  { id: 'call_b2', name: 'get_time', arguments: '{"zone": "Europe/Paris"}' },
];

/** An in-stream error event and a body that cuts off one oversized event, in each dialect's own shape. */
const SHAPES: Record<DialectName, { delta: (text: string) => string; overloaded: string }> = {
  chat: {
    delta: (content) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`,
    overloaded: 'rate_limit_exceeded',
  },
  responses: {
    delta: (delta) => `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, delta })}\n\n`,
    overloaded: 'rate_limit_exceeded',
  },
  anthropic: {
    delta: (text) =>
      `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n` +
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })}\n\n`,
    overloaded: 'overloaded_error',
  },
};

for (const dialect of DIALECTS) {
  const name = (what: string) => `${dialect}: ${what}`;
  let plan: FaultPlan = {};
  let stack: Stack;
  let room = 0;
  test.before(async () => {
    stack = await startStack({ env: { ...ENV, UPSTREAM_DIALECT: dialect }, plan: () => plan });
  });
  test.after(async () => {
    await stack?.close();
  });

  /** One send under `fault`: the client, its reply's frames, and the upstream request that served it. */
  async function replyUnder(fault: FaultPlan, c?: TestClient) {
    plan = { text: TEXT, ...fault };
    c ??= await stack.connect();
    const conversationId = `${dialect}-${room++}`;
    const before = stack.model.requests.length;
    c.send({ type: 'send', conversationId, text: 'go' });
    const start = await c.next('reply.start', (f) => f.conversationId === conversationId);
    const end = await c.next('reply.end', (f) => f.conversationId === conversationId);
    assert.is(end.replyId, start.replyId);
    assert.is(c.invalid.length, 0, 'every frame matches the protocol');
    const deltas = c.events(conversationId).filter((f): f is ServerFrameOf<'reply.delta'> => f.type === 'reply.delta');
    const request: RecordedRequest | undefined = stack.model.requests[before];
    return { c, end, deltas, text: replyText(c.frames, start.replyId), request };
  }

  test(name('a reply streams text and reasoning, ends with stop and the upstream usage'), async () => {
    const { end, deltas, text, request } = await replyUnder({ reasoning: 'Thinking it over.' });
    assert.is(request?.dialect, dialect, 'the upstream was spoken to in this dialect');
    assert.is(text, TEXT);
    assert.is(deltas.map((d) => d.reasoning ?? '').join(''), 'Thinking it over.');
    assert.is(end.finishReason, 'stop');
    assert.is(end.usage?.source, 'upstream');
    assert.ok(end.usage!.completionTokens > 0);
  });

  test(name('the context arrives in the dialect: system prompt first, the history after it'), async () => {
    plan = { text: 'first answer' };
    const c = await stack.connect();
    const conversationId = `${dialect}-context`;
    c.send({ type: 'send', conversationId, text: 'first question' });
    await c.next('reply.end');
    c.send({ type: 'send', conversationId, text: 'second question' });
    await c.next('reply.end');
    const request = stack.model.requests.at(-1)!;
    assert.equal(
      request.messages.map((m) => [m.role, m.content]),
      [
        ['system', 'Be brief.'],
        ['user', 'first question'],
        ['assistant', 'first answer'],
        ['user', 'second question'],
      ],
    );
  });

  test(name('tool calls stream live: the pieces add up to reply.end.toolCalls, finish tool_calls'), async () => {
    const { end, deltas } = await replyUnder({ text: '', toolCalls: CALLS });
    assert.is(end.finishReason, 'tool_calls');
    const ids = end.toolCalls!.map((t) => t.id);
    // Anthropic names its calls toolu_…; the demo model adds that prefix.
    assert.equal(end.toolCalls!.map((t) => [t.name, t.arguments]), CALLS.map((t) => [t.name, t.arguments]));
    assert.ok(ids.every((id, i) => id.endsWith(CALLS[i]!.id)), `ids: ${ids.join(', ')}`);
    const pieces = deltas.filter((d) => d.toolCall);
    assert.ok(pieces.length > CALLS.length, 'arguments arrive in several pieces, not only at the end');
    const rebuilt: ToolCall[] = [];
    for (const { toolCall: p } of pieces) {
      const call = (rebuilt[p!.index] ??= { id: '', name: '', arguments: '' });
      call.id = p!.id ?? call.id;
      call.name = p!.name ?? call.name;
      call.arguments += p!.arguments ?? '';
    }
    assert.equal(rebuilt, end.toolCalls);
  });

  test(name('a late joiner sees the tool call in flight in joined.streaming, and the rest live'), async () => {
    plan = { text: '', toolCalls: [CALLS[0]!], tokenDelayMs: 40 };
    const a = await stack.connect();
    const conversationId = `${dialect}-late`;
    a.send({ type: 'send', conversationId, text: 'call it' });
    await a.next('reply.delta', (d) => (d.toolCall?.arguments ?? '').length > 0);
    const b = await stack.connect();
    b.send({ type: 'join', conversationId });
    const joined = await b.next('joined');
    const end = await b.next('reply.end');
    const inFlight = joined.streaming?.toolCalls?.[0];
    assert.ok(inFlight, 'the call in flight is in the snapshot');
    assert.is(inFlight.name, CALLS[0]!.name);
    assert.ok(CALLS[0]!.arguments.startsWith(inFlight.arguments), 'what the snapshot shows is the start of the arguments');
    const live = b.events(conversationId).filter((f): f is ServerFrameOf<'reply.delta'> => f.type === 'reply.delta');
    assert.is(inFlight.arguments + live.map((d) => d.toolCall?.arguments ?? '').join(''), end.toolCalls![0]!.arguments);
  });

  test(name('max tokens reached: finish length'), async () => {
    plan = { text: TEXT };
    const c = await stack.connect();
    c.send({ type: 'send', conversationId: `${dialect}-length`, text: 'go', options: { maxTokens: 3 } });
    const end = await c.next('reply.end');
    assert.is(end.finishReason, 'length');
    assert.is(replyText(c.frames, end.replyId), 'alpha beta gamma');
  });

  test(name('cancel aborts the upstream request: the model sees its connection closed'), async () => {
    plan = { text: TEXT, tokenDelayMs: 50 };
    const c = await stack.connect();
    const conversationId = `${dialect}-cancel`;
    const before = stack.model.requests.length;
    c.send({ type: 'send', conversationId, text: 'go' });
    await c.next('reply.delta');
    c.send({ type: 'cancel', conversationId });
    const end = await c.next('reply.end');
    assert.is(end.finishReason, 'cancelled');
    const request = stack.model.requests[before]!;
    await request.closed;
    assert.ok(request.aborted, 'the upstream request was aborted, not finished');
  });

  const failures: Array<{ what: string; fault: FaultPlan; code: ErrorCode; kept: string }> = [
    { what: 'HTTP 429 before the first token', fault: { httpStatus: 429 }, code: 'upstream_rate_limited', kept: '' },
    { what: 'HTTP 500 before the first token', fault: { httpStatus: 500 }, code: 'upstream_error', kept: '' },
    { what: 'HTTP 503 before the first token', fault: { httpStatus: 503 }, code: 'upstream_error', kept: '' },
    { what: 'an error event mid-stream', fault: { errorAfterTokens: 3 }, code: 'upstream_error', kept: 'alpha beta gamma' },
    { what: 'an overload error event mid-stream', fault: { errorAfterTokens: 2, errorCode: SHAPES[dialect].overloaded }, code: 'upstream_rate_limited', kept: 'alpha beta' },
    { what: 'a malformed event mid-stream', fault: { malformedAfterTokens: 2 }, code: 'upstream_error', kept: 'alpha beta' },
    { what: 'a connection dropped mid-stream', fault: { dropAfterTokens: 4 }, code: 'upstream_error', kept: 'alpha beta gamma delta' },
    { what: 'a stream that never says how it finished (truncated)', fault: { omitFinishReason: true }, code: 'upstream_error', kept: TEXT },
    { what: 'silence longer than the idle timeout', fault: { stallAfterTokens: 2 }, code: 'upstream_timeout', kept: 'alpha beta' },
    {
      what: 'an oversized event (cut off)',
      fault: { replay: SHAPES[dialect].delta('kept ') + SHAPES[dialect].delta('x'.repeat(2 * 1024 * 1024)) },
      code: 'upstream_error',
      kept: 'kept ',
    },
  ];
  if (dialect === 'anthropic') failures.push({ what: 'HTTP 529 (overloaded) before the first token', fault: { httpStatus: 529 }, code: 'upstream_rate_limited', kept: '' });
  for (const { what, fault, code, kept } of failures) {
    test(name(`${what}: ${code}, the text before it kept`), async () => {
      const { end, text, request } = await replyUnder(fault);
      assert.is(end.finishReason, 'error');
      assert.is(end.error?.code, code, end.error?.message);
      assert.is(text, kept);
      // Whatever the fault, the upstream request does not outlive its reply.
      await request?.closed;
    });
  }

  test(name('after every fault the relay still answers normally'), async () => {
    const { end, text } = await replyUnder({});
    assert.is(end.finishReason, 'stop');
    assert.is(text, TEXT);
    await eventually(() => stack.model.openRequests === 0, 'no upstream request is left open');
  });
}

test.run();
