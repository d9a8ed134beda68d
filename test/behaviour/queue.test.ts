import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  // The first reply stalls (so the rest queue behind it); later ones answer at once.
  stack = await startStack({
    env: { MAX_ACTIVE_REPLIES: '10' },
    plan: (req) => (req.messages.at(-1)!.content === 'first' ? { text: 'a b c', stallAfterTokens: 1 } : { text: `re: ${req.messages.at(-1)!.content}` }),
  });
});
test.after.each(async () => {
  await stack.close();
});

test('replies queue behind the running one and run in order; past the bound: busy, nothing appended', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'q', text: 'first' });
  await c.next('reply.delta');
  for (let i = 1; i <= 4; i++) c.send({ type: 'send', conversationId: 'q', text: `q${i}` });
  for (let i = 1; i <= 4; i++) await c.next('message', (m) => m.message.text === `q${i}`);
  c.send({ type: 'send', conversationId: 'q', text: 'overflow', ref: 'over' });
  const err = await c.next('error');
  assert.is(err.code, 'busy');
  assert.is(err.ref, 'over');
  assert.not.ok(c.frames.some((f) => f.type === 'message' && f.message.text === 'overflow'));

  c.send({ type: 'cancel', conversationId: 'q' });
  for (let i = 0; i < 5; i++) await c.next('reply.end');
  // Each reply answered its own message, in the order sent, one at a time.
  const starts = c.frames.filter((f) => f.type === 'reply.start');
  const messages = c.frames.filter((f) => f.type === 'message');
  assert.equal(
    starts.map((s) => s.type === 'reply.start' && messages.find((m) => m.type === 'message' && m.message.id === s.inReplyTo)),
    messages.map((m) => m),
  );
  const kinds = c.events('q').filter((f) => f.type === 'reply.start' || f.type === 'reply.end').map((f) => f.type);
  assert.equal(kinds, Array(5).fill(['reply.start', 'reply.end']).flat(), 'never two replies at once');
  // A queued reply answers its own message, not the ones sent after it.
  const q2 = stack.model.requests.find((r) => r.messages.at(-1)!.content === 'q2')!;
  assert.not.ok(q2.messages.some((m) => m.content === 'q3'));
});

test('cancelling a queued reply by replyId removes it: it never starts, every member sees it end', async () => {
  const c = await stack.connect();
  const other = await stack.connect();
  other.send({ type: 'join', conversationId: 'qc' });
  await other.next('joined');
  c.send({ type: 'send', conversationId: 'qc', text: 'first' });
  await c.next('reply.delta');
  c.send({ type: 'send', conversationId: 'qc', text: 'keep' });
  c.send({ type: 'send', conversationId: 'qc', text: 'drop' });
  const drop = await c.next('message', (m) => m.message.text === 'drop');
  assert.ok(drop.replyId);
  c.send({ type: 'cancel', conversationId: 'qc', replyId: drop.replyId });
  for (const x of [c, other]) {
    const dropped = await x.next('reply.end', (e) => e.replyId === drop.replyId);
    assert.is(dropped.finishReason, 'cancelled');
    assert.ok(dropped.seq > drop.seq);
  }
  c.send({ type: 'cancel', conversationId: 'qc' });
  const kept = await c.next('reply.end', (e) => e.finishReason === 'stop');
  assert.is(replyText(c.frames, kept.replyId), 're: keep');
  assert.not.ok(c.frames.some((f) => f.type === 'reply.start' && f.replyId === drop.replyId), 'the dropped reply never started');
  assert.not.ok(stack.model.requests.some((r) => r.messages.at(-1)!.content === 'drop'));
  // Cancelling it again: it is gone.
  c.send({ type: 'cancel', conversationId: 'qc', replyId: drop.replyId, ref: 'again' });
  assert.is((await c.next('error', (e) => e.ref === 'again')).code, 'not_found');
});

test.run();
