import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ plan: () => ({ text: 'an answer' }) });
});
test.after.each(async () => {
  await stack.close();
});

test('a retried send with the same clientMessageId is not appended again and starts no reply', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'idem', text: 'once', clientMessageId: 'cm-1', ref: 'first' });
  const original = await c.next('message');
  await c.next('reply.end');

  // The retry a client makes after a reconnect, from a new socket.
  const again = await stack.connect();
  again.send({ type: 'send', conversationId: 'idem', text: 'once', clientMessageId: 'cm-1', ref: 'retry' });
  const echoed = await again.next('message', (m) => m.ref === 'retry');
  assert.is(echoed.message.id, original.message.id);
  assert.is(echoed.seq, original.seq);
  assert.is(echoed.message.clientMessageId, 'cm-1');

  again.send({ type: 'ping', ref: 'sync' });
  await again.next('pong');
  assert.is(stack.model.requests.length, 1, 'no second reply');
  const watcher = await stack.connect();
  watcher.send({ type: 'join', conversationId: 'idem' });
  const joined = await watcher.next('joined');
  assert.equal(
    joined.history.map((m) => m.role),
    ['user', 'assistant'],
  );
  // The first socket saw no second message either.
  assert.is(c.frames.filter((f) => f.type === 'message').length, 1);
});

test('a retry while the original reply still runs is answered, not rate limited', async () => {
  await stack.close();
  stack = await startStack({ env: { MAX_ACTIVE_REPLIES: '1' }, plan: () => ({ text: 'slow', stallAfterTokens: 1 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'busy', text: 'q', clientMessageId: 'cm-9' });
  const original = await c.next('message');
  await c.next('reply.delta');
  c.send({ type: 'send', conversationId: 'busy', text: 'q', clientMessageId: 'cm-9', ref: 'retry' });
  const echoed = await c.next('message', (m) => m.ref === 'retry');
  assert.is(echoed.message.id, original.message.id);
  assert.not.ok(c.frames.some((f) => f.type === 'error'));
});

test('a retry is free of MESSAGES_PER_MINUTE: answered with the stored message, not rate_limited', async () => {
  await stack.close();
  stack = await startStack({ env: { MESSAGES_PER_MINUTE: '1' } });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'mpm', text: 'once', clientMessageId: 'c', reply: false });
  const original = await c.next('message');
  c.send({ type: 'send', conversationId: 'mpm', text: 'once', clientMessageId: 'c', reply: false, ref: 'retry' });
  const echoed = await c.next('message', (m) => m.ref === 'retry');
  assert.is(echoed.message.id, original.message.id);
  assert.not.ok(c.frames.some((f) => f.type === 'error'));
});

test('the same clientMessageId in another conversation is a different message', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'one', text: 'hi', clientMessageId: 'same', reply: false });
  c.send({ type: 'send', conversationId: 'two', text: 'hi', clientMessageId: 'same', reply: false });
  const a = await c.next('message');
  const b = await c.next('message');
  assert.is.not(a.message.id, b.message.id);
  assert.is(b.conversationId, 'two');
});

test('two sends with the same clientMessageId racing on one socket append once', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'race', text: 'dup', clientMessageId: 'r-1', reply: false, ref: 'a' });
  c.send({ type: 'send', conversationId: 'race', text: 'dup', clientMessageId: 'r-1', reply: false, ref: 'b' });
  const first = await c.next('message');
  const second = await c.next('message');
  assert.is(first.message.id, second.message.id);
  assert.equal([first.ref, second.ref], ['a', 'b']);
});

test.run();
