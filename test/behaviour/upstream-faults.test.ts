import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan } from '../../demo/localmodel.js';
import type { ErrorCode } from '../../shared/codes.js';
import { replyText, startStack, type Stack, type TestClient } from '../helpers.js';

const TEXT = 'alpha beta gamma delta epsilon zeta eta theta';
let plan: FaultPlan = {};
const ENV = { UPSTREAM_IDLE_TIMEOUT_MS: '300', REPLY_MAX_MS: '2000', UPSTREAM_MAX_RETRIES: '0' };
let stack: Stack;
test.before(async () => {
  stack = await startStack({ env: ENV, plan: () => plan });
});
test.after(async () => {
  await stack.close();
});

let room = 0;
/** One send under `fault`; returns the client and the frames of that one reply. */
async function replyUnder(fault: FaultPlan): Promise<{ c: TestClient; end: Awaited<ReturnType<TestClient['next']>> & { type: 'reply.end' }; text: string }> {
  plan = { text: TEXT, ...fault };
  const c = await stack.connect();
  const conversationId = `fault-${room++}`;
  c.send({ type: 'send', conversationId, text: 'go' });
  const start = await c.next('reply.start');
  const end = await c.next('reply.end');
  assert.is(end.replyId, start.replyId);
  assert.is(c.frames.filter((f) => f.type === 'reply.end').length, 1, 'exactly one reply.end');
  assert.is(c.invalid.length, 0);
  return { c, end, text: replyText(c.frames, start.replyId) };
}

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;

// Each fault ends the reply as an error with this code, keeping the text that arrived before it.
const FAILURES: Array<{ name: string; fault: FaultPlan; code: ErrorCode; text: string }> = [
  { name: 'HTTP 429 before the first token', fault: { httpStatus: 429 }, code: 'upstream_rate_limited', text: '' },
  { name: 'HTTP 500 before the first token', fault: { httpStatus: 500 }, code: 'upstream_error', text: '' },
  { name: 'an error event mid-stream', fault: { errorAfterTokens: 3 }, code: 'upstream_error', text: 'alpha beta gamma' },
  { name: 'a malformed line mid-stream', fault: { malformedAfterTokens: 2 }, code: 'upstream_error', text: 'alpha beta' },
  { name: 'a connection dropped mid-stream', fault: { dropAfterTokens: 4 }, code: 'upstream_error', text: 'alpha beta gamma delta' },
  { name: 'a stream without a finish reason (truncated, not stop)', fault: { omitFinishReason: true }, code: 'upstream_error', text: TEXT },
  { name: 'an oversized event (cut off)', fault: { replay: chunk('kept ') + chunk('x'.repeat(2 * 1024 * 1024)) + 'data: [DONE]\n\n' }, code: 'upstream_error', text: 'kept ' },
];
for (const { name, fault, code, text: kept } of FAILURES) {
  test(`${name}: ${code}, text kept`, async () => {
    const { end, text } = await replyUnder(fault);
    assert.is(end.finishReason, 'error');
    assert.is(end.error?.code, code);
    assert.is(text, kept);
  });
}

/** A reply under `fault` ends with upstream_timeout after two tokens, and its upstream request is aborted. */
async function timesOut(fault: FaultPlan): ReturnType<typeof replyUnder> {
  const before = stack.model.requests.length;
  const reply = await replyUnder(fault);
  assert.is(reply.end.finishReason, 'error');
  assert.is(reply.end.error?.code, 'upstream_timeout');
  assert.is(reply.text, 'alpha beta');
  const req = stack.model.requests[before]!;
  await req.closed;
  assert.ok(req.aborted);
  return reply;
}

test('silence longer than the idle timeout: upstream_timeout, text kept, upstream aborted', async () => {
  const { c, end } = await timesOut({ stallAfterTokens: 2 });
  // Kept in history too.
  c.send({ type: 'join', conversationId: end.conversationId, since: 0 });
  const other = await stack.connect();
  other.send({ type: 'join', conversationId: end.conversationId });
  const joined = await other.next('joined');
  assert.is(joined.history.find((m) => m.id === end.replyId)?.text, 'alpha beta');
});

test('a missing [DONE] after a finish reason is still a clean stop', async () => {
  const { end, text } = await replyUnder({ omitDone: true });
  assert.is(end.finishReason, 'stop');
  assert.is(text, TEXT);
});

test('a finish reason, then silence: ends with that reason once the idle timeout passes, usage kept', async () => {
  const before = stack.model.requests.length;
  const { end, text } = await replyUnder({ stallAfterFinish: true });
  assert.is(end.finishReason, 'stop');
  assert.is(end.error, undefined);
  assert.is(text, TEXT);
  assert.is(end.usage?.source, 'upstream');
  assert.is(end.usage?.completionTokens, 8);
  const req = stack.model.requests[before]!;
  await req.closed;
  assert.ok(req.aborted, 'the response that never ended was closed');
});

test('max_tokens reached: finish length', async () => {
  plan = { text: TEXT };
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'len', text: 'go', options: { maxTokens: 3 } });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'length');
  assert.is(replyText(c.frames, end.replyId), 'alpha beta gamma');
  assert.is(end.usage?.completionTokens, 3);
});

test('UTF-8 split across TCP writes arrives intact', async () => {
  const { end, text } = await replyUnder({ text: 'naïve 日本語 — emoji 😊🎉 end', writeChunkBytes: 1 });
  assert.is(end.finishReason, 'stop');
  assert.is(text, 'naïve 日本語 — emoji 😊🎉 end');
});

test('without an upstream usage chunk the relay counts tokens itself (estimated)', async () => {
  await stack.close();
  stack = await startStack({ env: { ...ENV, UPSTREAM_INCLUDE_USAGE: 'false' }, plan: () => plan });
  const { end } = await replyUnder({ text: 'The quick brown fox jumps over the lazy dog.' });
  assert.is(end.usage?.source, 'estimated');
  assert.is(end.usage?.completionTokens, 10);
  assert.ok(end.usage!.promptTokens > 0);
  assert.is(end.usage!.totalTokens, end.usage!.promptTokens + end.usage!.completionTokens);
});

test('keep-alive comments do not extend the total reply deadline', async () => {
  // Comments every 50 ms keep the idle timer (300 ms) happy forever; REPLY_MAX_MS (2 s) still ends it.
  await timesOut({ stallAfterTokens: 2, keepAliveMs: 50 });
});

test('after every fault the server still serves a normal exchange', async () => {
  const { end, text } = await replyUnder({});
  assert.is(end.finishReason, 'stop');
  assert.is(text, TEXT);
});

test.run();
