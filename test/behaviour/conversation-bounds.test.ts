// What one conversation holds on to, whoever fills it: the history a joiner
// and the upstream get (HISTORY_LIMIT), the clientMessageIds it remembers
// (1,000), and the live frames a joiner may have waiting (10,000).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Store } from '../../server/backend/store.js';
import type { ServerFrameOf } from '../../shared/protocol.js';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

test('HISTORY_LIMIT: a joiner is shown the last messages only, and the upstream is sent no more', async () => {
  stack = await startStack({ env: { HISTORY_LIMIT: '3' }, plan: () => ({ text: 'ok' }) });
  const c = await stack.connect();
  for (let i = 0; i < 5; i++) c.send({ type: 'send', conversationId: 'h', text: `m${i}`, reply: false });
  await c.next('message', (m) => m.message.text === 'm4');
  const joiner = await stack.connect();
  joiner.send({ type: 'join', conversationId: 'h' });
  assert.equal((await joiner.next('joined')).history.map((m) => m.text), ['m2', 'm3', 'm4']);

  c.send({ type: 'send', conversationId: 'h', text: 'q' });
  await c.next('reply.end');
  const sent = stack.model.requests[0]!.messages;
  assert.equal(sent.map((m) => m.role), ['system', 'user', 'user', 'user']);
  assert.equal(sent.slice(1).map((m) => m.content), ['m3', 'm4', 'q']);
});

test('the last 1,000 clientMessageIds are remembered: the 1,001st before now is a new message', async () => {
  stack = await startStack({ env: { MESSAGES_PER_MINUTE: '5000', FRAME_BURST: '5000', FRAME_RATE_PER_SEC: '1000' } });
  const c = await stack.connect();
  const send = (n: number, ref?: string) => c.send({ type: 'send', conversationId: 'ids', text: `m${n}`, clientMessageId: `id-${n}`, reply: false, ref });
  // In batches well under the 64 frames a socket may have waiting.
  for (let first = 1; first <= 1001; first += 50) {
    const last = Math.min(first + 49, 1001);
    for (let n = first; n <= last; n++) send(n);
    await c.next('message', (m) => m.message.clientMessageId === `id-${last}`);
  }
  const original = (n: number) =>
    c.frames.find((f): f is ServerFrameOf<'message'> => f.type === 'message' && f.message.clientMessageId === `id-${n}`)!;
  // id-2 first: a retry of id-1 appends, and that pushes id-2 out.
  send(2, 'again-2');
  const echoed = await c.next('message', (m) => m.ref === 'again-2');
  assert.equal([echoed.seq, echoed.message], [original(2).seq, original(2).message], 'id-2: the original message');
  send(1, 'again-1');
  const appended = await c.next('message', (m) => m.ref === 'again-1');
  assert.is.not(appended.message.id, original(1).message.id, 'id-1: forgotten, a new message');
  assert.ok(appended.seq > original(1001).seq);
});

test('a joiner with more than 10,000 live frames waiting for its snapshot is closed with 4009', async () => {
  let entered!: () => void;
  const holding = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let holdNext = false;
  /** The real store, except that the next snapshot read waits until the test lets it go. */
  const holdSnapshot = (store: Store): Store => {
    const snapshot = store.log.snapshot.bind(store.log);
    store.log.snapshot = async (conversationId) => {
      if (holdNext) {
        holdNext = false;
        entered();
        await held;
      }
      return snapshot(conversationId);
    };
    return store;
  };
  const words = Array.from({ length: 10_001 }, (_, i) => `w${i}`).join(' ');
  stack = await startStack({ wrapStore: holdSnapshot, tokenDelayMs: 0, env: { TOKEN_QUOTA: '0' }, plan: () => ({ text: words }) });
  const talker = await stack.connect();
  talker.send({ type: 'join', conversationId: 'flood' });
  await talker.next('joined');
  const joiner = await stack.connect();
  holdNext = true;
  joiner.send({ type: 'join', conversationId: 'flood' });
  await holding;
  // 10,001 deltas, one live frame each, while the joiner's snapshot is held.
  talker.send({ type: 'send', conversationId: 'flood', text: 'go' });
  assert.is((await talker.next('reply.end', () => true, 120_000)).finishReason, 'stop');
  release();
  const outcome = await Promise.race([joiner.closed, joiner.next('joined').then(() => 'joined')]);
  assert.equal(outcome, { code: 4009, reason: 'slow consumer; reconnect and resume' });
});

test.run();
