import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan } from '../server/localmodel.js';
import { replyText, startStack, type Stack, type TestClient } from './helpers.js';

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

test('HTTP 429 before the first token: upstream_rate_limited', async () => {
  const { end, text } = await replyUnder({ httpStatus: 429 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_rate_limited');
  assert.is(text, '');
});

test('HTTP 500 before the first token: upstream_error', async () => {
  const { end } = await replyUnder({ httpStatus: 500 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
});

test('silence longer than the idle timeout: upstream_timeout, text kept, upstream aborted', async () => {
  const before = stack.model.requests.length;
  const { c, end, text } = await replyUnder({ stallAfterTokens: 2 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_timeout');
  assert.is(text, 'alpha beta');
  const req = stack.model.requests[before]!;
  await req.closed;
  assert.ok(req.aborted);
  // Kept in history too.
  c.send({ type: 'join', conversationId: end.conversationId, since: 0 });
  const other = await stack.connect();
  other.send({ type: 'join', conversationId: end.conversationId });
  const joined = await other.next('joined');
  assert.is(joined.history.find((m) => m.id === end.replyId)?.text, 'alpha beta');
});

test('an error event mid-stream: upstream_error, text kept', async () => {
  const { end, text } = await replyUnder({ errorAfterTokens: 3 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(text, 'alpha beta gamma');
});

test('a malformed line mid-stream: upstream_error, text kept', async () => {
  const { end, text } = await replyUnder({ malformedAfterTokens: 2 });
  assert.is(end.error?.code, 'upstream_error');
  assert.is(text, 'alpha beta');
});

test('a connection dropped mid-stream: upstream_error, text kept', async () => {
  const { end, text } = await replyUnder({ dropAfterTokens: 4 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(text, 'alpha beta gamma delta');
});

test('a stream without a finish reason is truncated, not stop', async () => {
  const { end, text } = await replyUnder({ omitFinishReason: true });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(text, TEXT);
});

test('a missing [DONE] after a finish reason is still a clean stop', async () => {
  const { end, text } = await replyUnder({ omitDone: true });
  assert.is(end.finishReason, 'stop');
  assert.is(text, TEXT);
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

test('an oversized upstream event is cut off with upstream_error, text kept', async () => {
  const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
  const { end, text } = await replyUnder({ replay: chunk('kept ') + chunk('x'.repeat(2 * 1024 * 1024)) + 'data: [DONE]\n\n' });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(text, 'kept ');
});

test('keep-alive comments do not extend the total reply deadline', async () => {
  const before = stack.model.requests.length;
  // Comments every 50 ms keep the idle timer (300 ms) happy forever; REPLY_MAX_MS (2 s) still ends it.
  const { end, text } = await replyUnder({ stallAfterTokens: 2, keepAliveMs: 50 });
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_timeout');
  assert.is(text, 'alpha beta');
  const req = stack.model.requests[before]!;
  await req.closed;
  assert.ok(req.aborted);
});

test('after every fault the server still serves a normal exchange', async () => {
  const { end, text } = await replyUnder({});
  assert.is(end.finishReason, 'stop');
  assert.is(text, TEXT);
});

test.run();
