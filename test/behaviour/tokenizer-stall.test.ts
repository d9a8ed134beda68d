// A client that fills a conversation with text the tokenizer finds hardest
// (long runs without a space) must not hold up the relay for everyone else.
//
// "While" is decided by order, not by a clock. The relay counts a history's
// tokens when a reply starts: after the message that asks for it has gone out
// to its members, before its reply.start. The relay and this test share one
// event loop, so a ping sent once that message has arrived can only be
// answered before reply.start if counting lets the event loop turn: counting
// all of it in one go (however fast) would deliver reply.start first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.after(async () => {
  await stack?.close();
});

function randomCjk(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(0x4e00 + Math.floor(Math.random() * (0x9fa5 - 0x4e00 + 1)));
  return s;
}

test('another socket is answered while a hostile history is counted for a reply', async () => {
  // A budget every message fits in, so the relay has all twelve to count.
  stack = await startStack({ env: { CONTEXT_TOKENS: '1000000' }, plan: () => ({ text: 'ok' }) });
  const a = await stack.connect();
  const b = await stack.connect();
  for (let i = 0; i < 12; i++) a.send({ type: 'send', conversationId: 'room', text: randomCjk(16_000), reply: false });
  a.send({ type: 'send', conversationId: 'room', text: 'hi' });
  await a.next('message', (m) => m.message.text === 'hi', 60_000);
  b.send({ type: 'ping', ref: 'during' });
  await b.next('pong', (p) => p.ref === 'during', 60_000);
  assert.not.ok(
    a.frames.some((f) => f.type === 'reply.start'),
    'the ping was answered only after the whole history had been counted',
  );
  const end = await a.next('reply.end', () => true, 60_000);
  assert.is(end.finishReason, 'stop');
  // Every message was sent upstream whole.
  const sent = stack.model.requests.at(-1)!.messages;
  assert.is(sent.filter((m) => m.role === 'user').length, 13);
});

test.run();
