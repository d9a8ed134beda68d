// CANCEL_POLICY=asker-or-owner: in a room, a member who neither asked for a
// reply nor owns the conversation cannot stop it; the asker and the owner can.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack, type TestClient } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { CANCEL_POLICY: 'asker-or-owner' }, plan: () => ({ text: 'word '.repeat(300), tokenDelayMs: 5 }) });
});
test.after.each(async () => {
  await stack.close();
});

async function joined(conversationId: string): Promise<TestClient> {
  const c = await stack.connect();
  c.send({ type: 'join', conversationId });
  await c.next('joined');
  return c;
}

test('a stranger cannot cancel; the asker and the owner can', async () => {
  const owner = await stack.connect();
  owner.send({ type: 'send', conversationId: 'policy', text: 'mine', reply: false });
  await owner.next('message');
  const asker = await joined('policy');
  const stranger = await joined('policy');

  asker.send({ type: 'send', conversationId: 'policy', text: 'tell me' });
  const first = await asker.next('reply.start');
  stranger.send({ type: 'cancel', conversationId: 'policy', ref: 's1' });
  const refused = await stranger.answerTo('s1');
  assert.ok(refused.type === 'error' && refused.code === 'forbidden', 'the stranger is refused');
  stranger.send({ type: 'cancel', conversationId: 'policy', replyId: first.replyId, ref: 's2' });
  const named = await stranger.answerTo('s2');
  assert.ok(named.type === 'error' && named.code === 'forbidden', 'by id too');
  await asker.next('reply.delta');
  asker.send({ type: 'cancel', conversationId: 'policy', replyId: first.replyId });
  const end = await asker.next('reply.end', (e) => e.replyId === first.replyId);
  assert.is(end.finishReason, 'cancelled', 'the asker may');

  asker.send({ type: 'send', conversationId: 'policy', text: 'again' });
  const second = await asker.next('reply.start', (s) => s.replyId !== first.replyId);
  // A queued one too: the stranger may not take it out of the queue.
  stranger.send({ type: 'send', conversationId: 'policy', text: 'after you' });
  const queued = await stranger.next('message', (m) => m.message.text === 'after you');
  asker.send({ type: 'cancel', conversationId: 'policy', replyId: queued.replyId, ref: 'q' });
  const notYours = await asker.answerTo('q');
  assert.ok(notYours.type === 'error' && notYours.code === 'forbidden', "the asker of one reply may not cancel another's queued reply");
  owner.send({ type: 'cancel', conversationId: 'policy', replyId: second.replyId });
  const ownerEnd = await asker.next('reply.end', (e) => e.replyId === second.replyId);
  assert.is(ownerEnd.finishReason, 'cancelled', 'the owner may');
  stranger.send({ type: 'cancel', conversationId: 'policy', replyId: queued.replyId });
  const strangerEnd = await stranger.next('reply.end', (e) => e.replyId === queued.replyId);
  assert.is(strangerEnd.finishReason, 'cancelled', 'the stranger may cancel their own');
});

test.run();
