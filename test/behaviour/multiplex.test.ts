import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrameOf } from '../../shared/protocol.js';
import { replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

const textFor = (room: string) => `reply for ${room}: ${'lorem ipsum '.repeat(15)}done`;

test('five conversations at once on one socket; cancelling one leaves the others whole', async () => {
  stack = await startStack({
    env: { MAX_ACTIVE_REPLIES: '5' },
    tokenDelayMs: 3,
    plan: (req) => {
      const room = req.messages.at(-1)!.content;
      return room === 'room-2' ? { text: textFor(room), stallAfterTokens: 4 } : { text: textFor(room) };
    },
  });
  const c = await stack.connect();
  const rooms = ['room-0', 'room-1', 'room-2', 'room-3', 'room-4'];
  for (const room of rooms) c.send({ type: 'send', conversationId: room, text: room });
  await c.next('reply.delta', (d) => d.conversationId === 'room-2');
  for (let i = 0; i < 3; i++) await c.next('reply.delta', (d) => d.conversationId === 'room-2');
  c.send({ type: 'cancel', conversationId: 'room-2' });

  const ends = new Map<string, ServerFrameOf<'reply.end'>>();
  for (const room of rooms) ends.set(room, await c.waitFor('reply.end', (e) => e.conversationId === room));
  for (const room of rooms) {
    const end = ends.get(room)!;
    if (room === 'room-2') {
      assert.is(end.finishReason, 'cancelled');
      assert.ok(textFor(room).startsWith(replyText(c.frames, end.replyId)));
    } else {
      assert.is(end.finishReason, 'stop', room);
      assert.is(replyText(c.frames, end.replyId), textFor(room), room);
    }
  }
  // Their frames interleave on the one socket rather than arriving one conversation after another.
  const order = c.frames.filter((f) => f.type === 'reply.delta').map((f) => (f as ServerFrameOf<'reply.delta'>).conversationId);
  const switches = order.filter((room, i) => i > 0 && room !== order[i - 1]).length;
  assert.ok(switches > rooms.length, `deltas interleave (${switches} switches)`);
  for (const room of rooms) {
    const seqs = c.events(room).map((f) => f.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `seq increasing in ${room}`);
  }
});

test('more replies in flight than maxActiveReplies: rate_limited, nothing appended', async () => {
  stack = await startStack({ plan: () => ({ text: 'x y z', stallAfterTokens: 1 }) });
  const c = await stack.connect();
  for (let i = 0; i < 4; i++) {
    c.send({ type: 'send', conversationId: `r${i}`, text: 'go' });
    await c.next('reply.start');
  }
  c.send({ type: 'send', conversationId: 'r4', text: 'one too many', ref: 'over' });
  const err = await c.next('error');
  assert.is(err.code, 'rate_limited');
  assert.is(err.ref, 'over');
  assert.is(err.conversationId, 'r4');
  assert.not.ok(c.frames.some((f) => f.type === 'message' && f.conversationId === 'r4'));
  assert.is(stack.model.requests.length, 4);

  // Once one ends, the user may start another.
  c.send({ type: 'cancel', conversationId: 'r0' });
  await c.next('reply.end');
  c.send({ type: 'send', conversationId: 'r4', text: 'now it fits' });
  const start = await c.next('reply.start');
  assert.is(start.conversationId, 'r4');
});

test('joining more than maxConversations: rate_limited', async () => {
  stack = await startStack({ env: { MAX_CONVERSATIONS: '2' } });
  const c = await stack.connect();
  c.send({ type: 'join', conversationId: 'a' });
  c.send({ type: 'join', conversationId: 'b' });
  c.send({ type: 'join', conversationId: 'c', ref: 'third' });
  const err = await c.next('error');
  assert.is(err.code, 'rate_limited');
  assert.is(err.ref, 'third');
  assert.is(c.frames.filter((f) => f.type === 'joined').length, 2);
  // Leaving one makes room.
  c.send({ type: 'leave', conversationId: 'a', ref: 'l' });
  assert.is((await c.next('left')).ref, 'l');
  c.send({ type: 'join', conversationId: 'c' });
  assert.is((await c.next('joined', (j) => j.conversationId === 'c')).conversationId, 'c');
});

test.run();
