import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ plan: () => ({ text: 'Hello — 世界, nice to meet you! 😊' }) });
});
test.after.each(async () => {
  await stack.close();
});

test('a whole exchange: hello, send, message, reply.start, deltas, reply.end', async () => {
  const c = await stack.connect({ hello: false });
  c.send({ type: 'hello', ref: 'h1' });
  const welcome = await c.next('welcome');
  assert.is(welcome.ref, 'h1');
  assert.is(welcome.protocol, 1);
  assert.ok(welcome.user.id && welcome.user.name);
  assert.is(welcome.limits.maxFrameBytes, 65536);
  assert.is(welcome.limits.maxConversations, 64);
  assert.is(welcome.limits.maxActiveReplies, 4);
  assert.is(welcome.limits.frameRatePerSec, 20);
  assert.is(welcome.limits.frameBurst, 60);

  c.send({ type: 'send', conversationId: 'room-1', text: 'Hi there', ref: 's1', clientMessageId: 'm1' });
  const joined = await c.next('joined');
  assert.is(joined.conversationId, 'room-1');
  assert.equal(joined.history, []);
  const message = await c.next('message');
  assert.is(message.ref, 's1');
  assert.is(message.message.text, 'Hi there');
  assert.is(message.message.author.id, welcome.user.id);
  assert.is(message.message.clientMessageId, 'm1');
  const start = await c.next('reply.start');
  assert.is(start.inReplyTo, message.message.id);
  assert.is(start.replyId, message.replyId);
  assert.is(start.model, 'test-model');
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assert.is(end.usage?.source, 'upstream');
  assert.ok(end.usage!.completionTokens > 0);
  assert.is(replyText(c.frames, start.replyId), 'Hello — 世界, nice to meet you! 😊');
  const seqs = c.events('room-1').map((f) => f.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'seq strictly increasing');
  assert.is(c.invalid.length, 0, 'every server frame matches the schema');
});

test('history is sent upstream as context on the second turn', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'ctx', text: 'My name is Ada.' });
  await c.next('reply.end');
  c.send({ type: 'send', conversationId: 'ctx', text: 'What is my name?' });
  await c.next('reply.end');
  const second = stack.model.requests[1]!;
  const roles = second.messages.map((m) => m.role);
  assert.equal(roles, ['system', 'user', 'assistant', 'user']);
  assert.is(second.messages[1]!.content, 'My name is Ada.');
  assert.is(second.messages[2]!.content, 'Hello — 世界, nice to meet you! 😊');
  assert.is(second.messages[3]!.content, 'What is my name?');
});

test('the context is trimmed to the token budget, keeping the newest messages', async () => {
  await stack.close();
  stack = await startStack({ env: { CONTEXT_TOKENS: '60', SYSTEM_PROMPT: 'Be brief.' }, plan: () => ({ text: 'ok' }) });
  const c = await stack.connect();
  const long = 'lorem ipsum dolor sit amet '.repeat(4); // ~20 tokens
  for (let i = 0; i < 5; i++) {
    c.send({ type: 'send', conversationId: 'trim', text: `${i} ${long}` });
    await c.next('reply.end');
  }
  const last = stack.model.requests[4]!;
  assert.is(last.messages[0]!.role, 'system');
  assert.ok(last.messages.length < 10, `trimmed: ${last.messages.length} messages`);
  assert.ok(last.messages[last.messages.length - 1]!.content.startsWith('4 '), 'newest message kept');
  assert.ok(!last.messages.some((m) => m.content.startsWith('0 ')), 'oldest message dropped');
});

test('reply: false appends the message and starts no reply', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'quiet', text: 'just saying', reply: false });
  const m = await c.next('message');
  assert.is(m.replyId, undefined);
  c.send({ type: 'ping', ref: 'p' });
  await c.next('pong');
  assert.is(stack.model.requests.length, 0);
  assert.not.ok(c.frames.some((f) => f.type === 'reply.start'));
});

test('ping answers pong with the server time and the ref', async () => {
  const c = await stack.connect();
  c.send({ type: 'ping', ref: 'p1' });
  const pong = await c.next('pong');
  assert.is(pong.ref, 'p1');
  assert.type(pong.t, 'number');
});

test.run();
