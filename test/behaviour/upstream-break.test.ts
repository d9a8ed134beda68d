// Text that arrived before the upstream connection broke is kept, even when
// the store is still writing an earlier piece at the moment it breaks (as a
// shared store may be): the break waits for what came before it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Store } from '../../server/backend/store.js';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.after(async () => {
  await stack.close();
});

test('a connection dropped while a piece is being written: upstream_error, every piece before the drop kept', async () => {
  let held: Promise<void> | undefined;
  let release!: () => void;
  /** The real store, except that the first delta's write waits until the test lets it go. */
  const holdFirstDelta = (store: Store): Store => {
    const append = store.log.append.bind(store.log);
    store.log.append = (conversationId, event, fence) => {
      if (event.type !== 'reply.delta' || held) return append(conversationId, event, fence);
      held = new Promise<void>((resolve) => (release = resolve));
      return held.then(() => append(conversationId, event, fence));
    };
    return store;
  };
  stack = await startStack({ wrapStore: holdFirstDelta, plan: () => ({ text: 'alpha beta gamma delta epsilon', dropAfterTokens: 4 }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'break', text: 'go' });
  await c.next('reply.start');
  // The upstream has written four pieces and dropped the connection while the first is still held.
  await eventually(() => stack.model.requests.length === 1, 'the upstream request');
  await stack.model.requests[0]!.closed;
  release();
  const end = await c.next('reply.end');
  assert.is(end.error?.code, 'upstream_error');
  assert.is(replyText(c.frames), 'alpha beta gamma delta');
});

test.run();
