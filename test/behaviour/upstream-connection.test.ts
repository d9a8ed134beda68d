import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan } from '../../demo/localmodel.js';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

let plan: FaultPlan = {};
let stack: Stack;
test.before.each(async () => {
  plan = {};
  stack = await startStack({ plan: () => plan });
});
test.after.each(async () => {
  await stack.close();
});

test('replies one after another reuse one upstream connection (no new handshake per reply)', async () => {
  const c = await stack.connect();
  for (const [i, text] of ['one two', 'three four', 'five six'].entries()) {
    plan = { text };
    c.send({ type: 'send', conversationId: 'k1', text: `go ${i}` });
    const start = await c.next('reply.start');
    const end = await c.next('reply.end');
    assert.is(end.finishReason, 'stop');
    assert.is(replyText(c.frames, start.replyId), text);
    await stack.model.requests[i]!.closed;
  }
  const connections = stack.model.requests.map((r) => r.connection);
  assert.equal(connections, [connections[0], connections[0], connections[0]]);
});

test('a reply ends at [DONE] even when the upstream holds the body open, and that connection is then given up', async () => {
  plan = { text: 'alpha beta', holdAfterDoneMs: 60_000 };
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'k2', text: 'go' });
  const start = await c.next('reply.start');
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assert.is(replyText(c.frames, start.replyId), 'alpha beta');
  const held = stack.model.requests[0]!;
  assert.not.ok(held.finished, 'the upstream had not ended its body when the reply ended');
  await held.closed;
  assert.ok(held.aborted, 'the relay closed the held connection rather than keep it forever');

  plan = { text: 'gamma' };
  c.send({ type: 'send', conversationId: 'k2', text: 'again' });
  await c.next('reply.end', (f) => f.replyId !== start.replyId);
  assert.is.not(stack.model.requests[1]!.connection, held.connection);
});

test('a cancelled reply closes its connection; the next reply opens a fresh one and streams normally', async () => {
  plan = { text: 'one two three four five', stallAfterTokens: 2 };
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'k3', text: 'go' });
  await c.next('reply.delta');
  c.send({ type: 'cancel', conversationId: 'k3' });
  assert.is((await c.next('reply.end')).finishReason, 'cancelled');
  const cancelled = stack.model.requests[0]!;
  await cancelled.closed;
  assert.ok(cancelled.aborted);

  plan = { text: 'six seven' };
  c.send({ type: 'send', conversationId: 'k3', text: 'again' });
  const start = await c.next('reply.start');
  await c.next('reply.end', (f) => f.replyId === start.replyId);
  assert.is(replyText(c.frames, start.replyId), 'six seven');
  assert.is.not(stack.model.requests[1]!.connection, cancelled.connection);
});

test('replies that ran at once keep their connections for the next ones, up to UPSTREAM_MAX_IDLE_CONNECTIONS', async () => {
  await stack.close();
  // Every request waits before its first token, so a burst's replies all run at once, each on its own connection.
  stack = await startStack({ env: { UPSTREAM_MAX_IDLE_CONNECTIONS: '3', MAX_ACTIVE_REPLIES: '10' }, plan: () => ({ text: 'a b', firstTokenDelayMs: 1000 }) });
  const c = await stack.connect();
  const burst = async (round: number) => {
    const ids = [1, 2, 3, 4, 5].map((i) => `burst-${round}-${i}`);
    for (const id of ids) c.send({ type: 'send', conversationId: id, text: 'go' });
    // They end in any order: each is looked up among all frames, not after the previous one.
    for (const id of ids) assert.is((await c.waitFor('reply.end', (f) => f.conversationId === id)).finishReason, 'stop');
    const requests = stack.model.requests.slice(-5);
    await Promise.all(requests.map((r) => r.closed));
    return new Set(requests.map((r) => r.connection));
  };
  const first = await burst(1);
  assert.is(first.size, 5, 'the first burst ran on five connections');
  // A reply ends at [DONE]; its connection returns to the pool only once the body has ended after it.
  await eventually(async () => (await stack.model.openConnections()) === 3, 'the relay keeps three idle connections and closes the other two');
  const second = await burst(2);
  const reused = [...second].filter((connection) => first.has(connection));
  assert.is(reused.length, 3, 'three connections were kept and reused; the other two were closed when their replies ended');
  assert.is(second.size, 5);
});

test.run();
