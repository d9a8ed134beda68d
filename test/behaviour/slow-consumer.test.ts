import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

// Ten thousand 1 KB tokens: far more than the loopback socket buffers hold.
const TOKEN = ` ${'x'.repeat(999)}`;
const TEXT = TOKEN.repeat(10_000);

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    env: { SLOW_CONSUMER_HIGH_WATER_BYTES: '16384', SEND_BUFFER_LIMIT_BYTES: '1048576', TOKEN_QUOTA: '0' },
    tokenDelayMs: 0,
    plan: () => ({ text: TEXT }),
  });
});
test.after(async () => {
  await stack.close();
});

test('a member that stops reading is closed with 4009; the others get every token; the slow one resumes losslessly', async () => {
  const fast = await stack.connect();
  const slow = await stack.connect();
  for (const c of [fast, slow]) {
    c.send({ type: 'join', conversationId: 'big' });
    await c.next('joined');
  }
  slow.ws.pause(); // stops reading from the TCP socket
  fast.send({ type: 'send', conversationId: 'big', text: 'write a book' });
  const end = await fast.next('reply.end', () => true, 60_000);
  assert.is(end.finishReason, 'stop');
  assert.ok(replyText(fast.frames, end.replyId) === TEXT, 'the fast member got every token');
  assert.is(fast.ws.readyState, fast.ws.OPEN);

  slow.ws.resume();
  const closed = await slow.closed;
  assert.is(closed.code, 4009);
  await eventually(() => stack.relay.stats().sockets === 1, 'the slow socket is released');

  const seen = slow.events('big');
  const since = seen.at(-1)?.seq ?? 0;
  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'big', since });
  await back.next('joined');
  await back.next('reply.end', (e) => e.replyId === end.replyId);
  const all = [...seen, ...back.events('big')];
  const seqs = all.map((f) => f.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'no seq twice, none out of order');
  assert.ok(replyText(all, end.replyId) === TEXT, 'the slow member ends with the whole text');
});

test.run();
