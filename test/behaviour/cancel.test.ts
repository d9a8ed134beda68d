import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  // Three tokens, then the upstream goes quiet: the reply is mid-stream for as long as the test needs.
  stack = await startStack({ plan: () => ({ text: 'one two three four five six seven', stallAfterTokens: 3 }) });
});
test.after.each(async () => {
  await stack.close();
});

test('cancel aborts the upstream request and ends the reply as cancelled; nothing follows reply.end', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'c1', text: 'talk' });
  const start = await c.next('reply.start');
  await c.next('reply.delta');
  await c.next('reply.delta');
  await c.next('reply.delta');
  c.send({ type: 'cancel', conversationId: 'c1' });
  const end = await c.next('reply.end');
  assert.is(end.replyId, start.replyId);
  assert.is(end.finishReason, 'cancelled');
  assert.is(end.error, undefined);

  const upstream = stack.model.requests[0]!;
  await upstream.closed;
  assert.ok(upstream.aborted, 'the upstream saw its connection closed');
  assert.not.ok(upstream.finished);
  assert.is(stack.model.openRequests, 0);

  // A round trip after the abort: anything the relay would still send for the reply would be here by now.
  c.send({ type: 'ping', ref: 'after' });
  await c.next('pong');
  const endAt = c.frames.indexOf(end);
  assert.not.ok(c.frames.slice(endAt + 1).some((f) => 'replyId' in f && f.replyId === start.replyId));
});

test('the partial text of a cancelled reply stays in history', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'c2', text: 'talk' });
  const start = await c.next('reply.start');
  for (let i = 0; i < 3; i++) await c.next('reply.delta');
  c.send({ type: 'cancel', conversationId: 'c2', replyId: start.replyId });
  await c.next('reply.end');
  const partial = replyText(c.frames, start.replyId);
  assert.is(partial, 'one two three');

  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'c2' });
  const joined = await late.next('joined');
  const reply = joined.history.find((m) => m.id === start.replyId);
  assert.ok(reply, 'reply in history');
  assert.is(reply!.role, 'assistant');
  assert.is(reply!.text, partial);
  assert.is(reply!.finishReason, 'cancelled');
  assert.is(reply!.model, 'test-model');
  assert.is(joined.streaming, undefined);
});

test('cancel with nothing running, or an unknown replyId, answers not_found', async () => {
  const c = await stack.connect();
  c.send({ type: 'join', conversationId: 'c3' });
  await c.next('joined');
  c.send({ type: 'cancel', conversationId: 'c3', ref: 'x1' });
  const e1 = await c.next('error');
  assert.is(e1.code, 'not_found');
  assert.is(e1.ref, 'x1');
  assert.is(e1.conversationId, 'c3');

  c.send({ type: 'send', conversationId: 'c3', text: 'talk' });
  await c.next('reply.delta');
  c.send({ type: 'cancel', conversationId: 'c3', replyId: 'no-such-reply', ref: 'x2' });
  const e2 = await c.next('error');
  assert.is(e2.code, 'not_found');
  assert.is(e2.ref, 'x2');
  assert.not.ok(stack.model.requests[0]!.aborted, 'the running reply is untouched');
});

test('cancel of a conversation the socket is not in answers not_found', async () => {
  const owner = await stack.connect();
  owner.send({ type: 'send', conversationId: 'c4', text: 'talk' });
  await owner.next('reply.delta');
  const stranger = await stack.connect();
  stranger.send({ type: 'cancel', conversationId: 'c4', ref: 's' });
  assert.is((await stranger.next('error')).code, 'not_found');
  assert.not.ok(stack.model.requests[0]!.aborted);
});

test.run();
