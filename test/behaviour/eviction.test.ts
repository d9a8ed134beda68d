import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backend, eventually, startStack, type Stack } from '../helpers.js';

/** Redis and the embedded store keep a conversation whatever this node's memory forgot. */
const durable = backend() !== 'memory';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { CONVERSATION_IDLE_MS: '50', REPLY_GRACE_MS: '50' }, plan: () => ({ text: 'fine' }) });
});
test.after.each(async () => {
  await stack.close();
});

test('conversations with no member and no reply are evicted: the store shrinks to zero', async () => {
  const c = await stack.connect();
  for (let i = 0; i < 20; i++) c.send({ type: 'send', conversationId: `e${i}`, text: 'hi' });
  // Each send is answered: its message, or a refusal (four replies at most per user) after it joined.
  await eventually(() => c.frames.filter((f) => f.type === 'message' || f.type === 'error').length === 20, 'every send answered');
  assert.ok(stack.relay.stats().conversations >= 20);
  c.kill();
  await eventually(() => stack.relay.stats().storedConversations === 0, 'the store is empty');
  await eventually(() => stack.relay.stats().conversations === 0, 'no conversation objects are left');
  assert.is(stack.relay.stats().usersWithReplies, 0);
  assert.is(stack.relay.stats().sockets, 0);
});

test(`a member keeps its conversation; an evicted one comes back past its old seq${durable ? ', its log still in the store' : ''}`, async () => {
  const keeper = await stack.connect();
  keeper.send({ type: 'send', conversationId: 'kept', text: 'hi' });
  await keeper.next('reply.end');
  const other = await stack.connect();
  other.send({ type: 'send', conversationId: 'gone', text: 'hi' });
  const end = await other.next('reply.end');
  other.kill();
  await eventually(() => stack.relay.stats().storedConversations === 1, 'only the one with a member is left');

  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'gone', since: end.seq - 1 });
  const joined = await back.next('joined');
  if (durable) {
    // Kept for REDIS_RETENTION_MS on Redis, on disk by the embedded store: the resume replays.
    assert.is(joined.reset, undefined);
    assert.is((await back.next('reply.end')).seq, end.seq);
  } else {
    assert.is(joined.reset, true, 'the server forgot what came after since: the client must replace its state');
  }
  // A client that had seen everything misses nothing: no reset.
  const upToDate = await stack.connect();
  upToDate.send({ type: 'join', conversationId: 'gone', since: end.seq });
  assert.is((await upToDate.next('joined')).reset, undefined);
  back.send({ type: 'send', conversationId: 'gone', text: 'again', reply: false });
  const m = await back.next('message');
  assert.ok(m.seq > end.seq, 'a new life of the conversation never reuses a seq');
});

test.run();
