// A failure in one frame's handling answers `internal` and touches nothing else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryStore } from '../../server/backend/memory/store.js';
import { replyText, startStack, type Stack } from '../helpers.js';

/** A store with a bug that shows only in one conversation. */
class BrokenStore extends MemoryStore {
  override async snapshot(conversationId: string) {
    if (conversationId === 'cursed') throw new Error('simulated store bug');
    return super.snapshot(conversationId);
  }
}

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    makeStore: (limits, bus) => new BrokenStore(limits, bus),
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

test.run();
