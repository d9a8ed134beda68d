// A failure in one frame's handling answers `internal` and touches nothing else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Store } from '../../server/backend/store.js';
import { replyText, startStack, type Stack } from '../helpers.js';

/** The real store (memory or Redis) with a bug that shows only in one conversation. */
function broken(store: Store): Store {
  const log = store.log;
  const snapshot = log.snapshot.bind(log);
  log.snapshot = (conversationId: string) => (conversationId === 'cursed' ? Promise.reject(new Error('simulated store bug')) : snapshot(conversationId));
  const context = log.context.bind(log);
  log.context = (conversationId: string) => (conversationId === 'no-history' ? Promise.reject(new Error('simulated store bug')) : context(conversationId));
  return store;
}

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    wrapStore: broken,
    plan: () => ({ text: 'all good here' }),
  });
});
test.after(async () => {
  await stack.close();
});

test('an unexpected error answers internal with the ref; the socket, the process and others carry on', async () => {
  const victim = await stack.connect();
  const bystander = await stack.connect();
  bystander.send({ type: 'join', conversationId: 'fine' });
  await bystander.next('joined');

  victim.send({ type: 'join', conversationId: 'cursed', ref: 'boom' });
  const err = await victim.next('error');
  assert.is(err.code, 'internal');
  assert.is(err.ref, 'boom');
  assert.is(err.conversationId, 'cursed');
  assert.not.ok(err.message.includes('simulated'), 'internals are not leaked to the client');

  // The failed join left no membership behind, and the same socket still works.
  victim.send({ type: 'send', conversationId: 'fine', text: 'hello' });
  await victim.next('reply.end');
  await bystander.next('reply.end');
  assert.is(replyText(bystander.frames), 'all good here');
  victim.send({ type: 'typing', conversationId: 'cursed', ref: 't' });
  assert.is((await victim.next('error', (e) => e.ref === 't')).code, 'not_found');
});

test('a history that cannot be read still ends the reply, once, for everyone; the queue moves on', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'no-history', text: 'first' });
  c.send({ type: 'send', conversationId: 'no-history', text: 'second' });
  const first = await c.next('message');
  const second = await c.next('message');
  const end = await c.waitFor('reply.end', (e) => e.replyId === first.replyId);
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'internal');
  await c.waitFor('reply.end', (e) => e.replyId === second.replyId);
  assert.is(c.frames.filter((f) => f.type === 'reply.end' && f.replyId === first.replyId).length, 1);
});

test.run();
