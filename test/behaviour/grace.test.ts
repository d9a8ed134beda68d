import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

test('a reply whose conversation has no member left is aborted upstream after the grace period', async () => {
  stack = await startStack({ env: { REPLY_GRACE_MS: '150' }, plan: () => ({ text: 'a b c d e', stallAfterTokens: 2 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'g1', text: 'go' });
  await c.next('reply.delta');
  c.kill();
  const req = stack.model.requests[0]!;
  await req.closed;
  assert.ok(req.aborted, 'upstream request aborted');
  await eventually(() => stack!.relay.stats().usersWithReplies === 0, 'reply slot released');

  // The reply ended as cancelled for whoever comes back.
  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'g1' });
  const joined = await back.next('joined');
  assert.is(joined.streaming, undefined);
  assert.is(joined.history.at(-1)?.finishReason, 'cancelled');
});

test('leaving explicitly starts the grace period too', async () => {
  stack = await startStack({ env: { REPLY_GRACE_MS: '100' }, plan: () => ({ text: 'a b c', stallAfterTokens: 1 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'g2', text: 'go' });
  await c.next('reply.delta');
  c.send({ type: 'leave', conversationId: 'g2' });
  await c.next('left');
  await stack.model.requests[0]!.closed;
  assert.ok(stack.model.requests[0]!.aborted);
});

test('coming back within the grace period keeps the reply alive to the end', async () => {
  const text = 'one two three four five six seven eight nine ten eleven twelve';
  stack = await startStack({ env: { REPLY_GRACE_MS: '5000' }, tokenDelayMs: 15, plan: () => ({ text }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'g3', text: 'go' });
  await c.next('reply.delta');
  c.kill();
  const seen = c.events('g3');
  const lastSeq = seen.at(-1)!.seq;

  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'g3', since: lastSeq });
  const end = await back.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assert.is(replyText(seen, end.replyId) + replyText(back.frames, end.replyId), text);
  assert.not.ok(stack.model.requests[0]!.aborted);
});

test.run();
