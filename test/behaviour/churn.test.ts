// State per socket is bounded by what it holds now, not by its history: a
// socket that joins and leaves many conversations leaves no conversation,
// timer or store entry behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.after(async () => {
  await stack.close();
});

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('join/leave churn: conversations and timers go back to what they were; MAX_CONVERSATIONS still caps what one socket is in', async () => {
  stack = await startStack({ env: { MAX_CONVERSATIONS: '5', FRAME_RATE_PER_SEC: '10000', FRAME_BURST: '10000', PRESENCE_COALESCE_MS: '1' } });
  const c = await stack.connect();
  const timersBefore = timers();
  const PAIRS = 600;
  // In batches that stay under the socket's inbox bound.
  for (let batch = 0; batch < PAIRS; batch += 20) {
    for (let i = batch; i < batch + 20; i++) {
      c.send({ type: 'join', conversationId: `churn-${i}` });
      c.send({ type: 'leave', conversationId: `churn-${i}` });
    }
    for (let i = batch; i < batch + 20; i++) await c.next('left');
  }
  assert.equal(c.frames.filter((f) => f.type === 'error'), []);
  await eventually(() => stack.relay.stats().conversations === 0, 'every conversation object is released');
  assert.is(stack.relay.stats().storedConversations, 0, 'joins alone store nothing');
  await eventually(() => timers() <= timersBefore + 2, `timers back to ${timersBefore} (now ${timers()})`);
  const metrics = await (await fetch(`http://127.0.0.1:${stack.relay.port}/metrics`)).text();
  assert.match(metrics, /^relay_conversations 0$/m);

  for (let i = 0; i < 5; i++) c.send({ type: 'join', conversationId: `held-${i}` });
  c.send({ type: 'join', conversationId: 'one-too-many', ref: 'six' });
  const refused = await c.next('error', (e) => e.ref === 'six');
  assert.is(refused.code, 'rate_limited');
  assert.is(stack.relay.stats().conversations, 5);
});

test.run();
