// The SDK may retry a request that failed before any byte of the reply, never one that had started streaming.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.after.each(async () => {
  await stack.close();
});

test('an HTTP 500 before the first token is retried and the reply streams normally', async () => {
  stack = await startStack({
    env: { UPSTREAM_MAX_RETRIES: '2' },
    plan: (req) => (req.id === 1 ? { httpStatus: 500 } : { text: 'second time lucky' }),
  });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r', text: 'go' });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assert.is(replyText(c.frames), 'second time lucky');
  assert.is(stack.model.requests.length, 2);
});

test('the pauses between retries are not upstream silence: a 503 to every attempt ends as upstream_error', async () => {
  // The SDK waits at least 375 ms before its first retry and 750 ms before its second: together longer than the idle timeout.
  stack = await startStack({ env: { UPSTREAM_MAX_RETRIES: '2', UPSTREAM_IDLE_TIMEOUT_MS: '1000' }, plan: () => ({ httpStatus: 503 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r', text: 'go' });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(stack.model.requests.length, 3, 'the first attempt and both retries');
});

test('a stream that breaks after its first token is never replayed', async () => {
  stack = await startStack({ env: { UPSTREAM_MAX_RETRIES: '2' }, plan: () => ({ text: 'half a reply', dropAfterTokens: 1 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r', text: 'go' });
  const end = await c.next('reply.end');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(replyText(c.frames), 'half');
  assert.is(stack.model.requests.length, 1);
});

test.run();
