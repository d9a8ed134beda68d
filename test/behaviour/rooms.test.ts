import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replyText, startStack, type Stack } from '../helpers.js';

const TEXT = 'Rooms share one stream: every member sees the same events, with the same seq, in the same order.';
let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ tokenDelayMs: 4, plan: () => ({ text: TEXT }) });
});
test.after.each(async () => {
  await stack.close();
});

test('three clients in one room see identical event sequences', async () => {
  const clients = await Promise.all([stack.connect(), stack.connect(), stack.connect()]);
  for (const c of clients) {
    c.send({ type: 'join', conversationId: 'lobby' });
    await c.next('joined');
  }
  clients[1]!.send({ type: 'send', conversationId: 'lobby', text: 'hello room', ref: 'mine' });
  for (const c of clients) await c.next('reply.end');
  const views = clients.map((c) => c.events('lobby').map((f) => JSON.stringify({ ...f, ref: undefined })));
  assert.ok(views[0]!.length > 5);
  assert.equal(views[1], views[0]);
  assert.equal(views[2], views[0]);
  // Only the sender's copy of its message carries its ref.
  const refs = clients.map((c) => c.frames.find((f) => f.type === 'message')!.ref);
  assert.equal(refs, [undefined, 'mine', undefined]);
  for (const c of clients) assert.is(replyText(c.frames), TEXT);
});

test('a client joining mid-reply ends with the same full text', async () => {
  const a = await stack.connect();
  a.send({ type: 'send', conversationId: 'mid', text: 'go' });
  const start = await a.next('reply.start');
  for (let i = 0; i < 5; i++) await a.next('reply.delta');

  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'mid' });
  const joined = await late.next('joined');
  assert.ok(joined.streaming, 'a reply is in flight');
  assert.is(joined.streaming!.replyId, start.replyId);
  assert.is(joined.streaming!.model, 'test-model');
  assert.ok(joined.streaming!.text.length > 0);
  const end = await late.next('reply.end');
  await a.next('reply.end');
  // Joined text + later deltas = the whole reply, byte for byte; nothing at or before streaming.seq is repeated.
  const after = late.events('mid').filter((f) => f.type === 'reply.delta');
  assert.ok(after.every((f) => f.seq > joined.streaming!.seq));
  assert.is(joined.streaming!.text + replyText(late.frames, end.replyId), TEXT);
  assert.is(replyText(a.frames, end.replyId), TEXT);
});

test('the model is told who said what', async () => {
  const ann = await stack.connect();
  const bob = await stack.connect();
  ann.send({ type: 'join', conversationId: 'names' });
  await ann.next('joined');
  bob.send({ type: 'send', conversationId: 'names', text: 'from bob', reply: false });
  await ann.next('message');
  ann.send({ type: 'send', conversationId: 'names', text: 'from ann' });
  await ann.next('reply.end');
  const sent = stack.model.requests[0]!.messages.filter((m) => m.role === 'user');
  const annName = ann.frames.find((f) => f.type === 'message' && f.message.text === 'from ann');
  const bobName = ann.frames.find((f) => f.type === 'message' && f.message.text === 'from bob');
  assert.ok(annName?.type === 'message' && bobName?.type === 'message');
  assert.is(sent[0]!.name, bobName.message.author.name.replace(/ /g, '_'));
  assert.is(sent[1]!.name, annName.message.author.name.replace(/ /g, '_'));
});

test.run();
