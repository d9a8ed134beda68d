// What a client may do once in: frame rate, replies per minute, token quota.
import { SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import type { Store } from '../../server/backend/store.js';
import { replyText, startStack, type Stack, type TestClient } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

test('a frame flood gets rate_limited errors, then sustained abuse closes with 4429', async () => {
  stack = await startStack({ env: { FRAME_RATE_PER_SEC: '5', FRAME_BURST: '10', FRAME_ABUSE_STRIKES: '20' } });
  const c = await stack.connect();
  for (let i = 0; i < 200; i++) c.send({ type: 'ping', ref: `p${i}` });
  const closed = await c.closed;
  assert.is(closed.code, 4429);
  assert.ok(c.frames.some((f) => f.type === 'error' && f.code === 'rate_limited'), 'warned with rate_limited first');
  // Everyone else is unaffected.
  const other = await stack.connect();
  other.send({ type: 'ping', ref: 'fine' });
  assert.is((await other.next('pong')).ref, 'fine');
});

test('malformed frames spend the same strikes: a stream of them is answered, then closed with 4429', async () => {
  stack = await startStack({ env: { FRAME_ABUSE_STRIKES: '20' } });
  const c = await stack.connect();
  // Well within the frame rate (a burst of 60): only their being malformed counts against them.
  const bad = ['not json', '{"type":"explode"}', '{"type":"join"}', '[1,2,3]'];
  for (let i = 0; i < 40; i++) c.sendRaw(bad[i % bad.length]!);
  c.send({ type: 'ping', ref: 'after' });
  const outcome = await Promise.race([c.closed, c.next('pong', (p) => p.ref === 'after').then(() => 'answered')]);
  assert.equal(outcome, { code: 4429, reason: 'too many refused frames' });
  const errors = c.frames.filter((f) => f.type === 'error');
  assert.ok(errors.length >= 20 && errors.length < 40, `${errors.length} of 40 malformed frames were answered`);
  assert.ok(errors.every((e) => e.type === 'error' && e.code === 'bad_frame'));
  // Everyone else is unaffected.
  const other = await stack.connect();
  other.send({ type: 'ping', ref: 'fine' });
  assert.is((await other.next('pong')).ref, 'fine');
});

test('a client within the frame rate is never limited', async () => {
  stack = await startStack({ env: { FRAME_RATE_PER_SEC: '5', FRAME_BURST: '10' } });
  const c = await stack.connect();
  for (let i = 0; i < 9; i++) c.send({ type: 'ping', ref: `p${i}` });
  await c.next('pong', (p) => p.ref === 'p8');
  assert.is(c.frames.filter((f) => f.type === 'pong').length, 9);
  assert.not.ok(c.frames.some((f) => f.type === 'error'));
});

test('at most 64 frames wait to be handled per socket; the frames past them get rate_limited', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  /** The real store, except that the first clientMessageId look-up waits until the test lets it go. */
  const holdFirstFind = (store: Store): Store => {
    const find = store.ids.find.bind(store.ids);
    let first = true;
    store.ids.find = async (conversationId, clientMessageId) => {
      if (first) {
        first = false;
        await held;
      }
      return find(conversationId, clientMessageId);
    };
    return store;
  };
  // Frame rate and strikes far above 100: only the inbox refuses.
  stack = await startStack({ wrapStore: holdFirstFind, env: { FRAME_BURST: '1000', FRAME_RATE_PER_SEC: '1000', FRAME_ABUSE_STRIKES: '1000' } });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'inbox', text: 'held', clientMessageId: 'held', reply: false });
  for (let i = 1; i < 100; i++) c.send({ type: 'ping', ref: `p${i}` });
  // The server answers a WebSocket ping once it has received every frame sent before it.
  await new Promise((resolve) => {
    c.ws.once('pong', resolve);
    c.ws.ping();
  });
  release();
  await c.next('message');
  await c.next('pong', (p) => p.ref === 'p63');
  c.send({ type: 'ping', ref: 'after' });
  await c.next('pong', (p) => p.ref === 'after');
  const pongs = c.frames.flatMap((f) => (f.type === 'pong' ? [f.ref] : []));
  assert.equal(pongs, [...Array.from({ length: 63 }, (_, i) => `p${i + 1}`), 'after'], 'the send and the 63 pings behind it were handled');
  const errors = c.frames.filter((f) => f.type === 'error');
  assert.is(errors.length, 36);
  assert.ok(errors.every((e) => e.type === 'error' && e.code === 'rate_limited'));
});

test('replies per minute per user: rate_limited, nothing appended', async () => {
  stack = await startStack({ env: { REPLIES_PER_MINUTE: '3' }, plan: () => ({ text: 'ok' }) });
  const c = await stack.connect();
  for (let i = 0; i < 3; i++) {
    c.send({ type: 'send', conversationId: 'rpm', text: `m${i}` });
    await c.next('reply.end');
  }
  c.send({ type: 'send', conversationId: 'rpm', text: 'one more', ref: 'x' });
  const err = await c.next('error');
  assert.is(err.code, 'rate_limited');
  assert.not.ok(c.frames.some((f) => f.type === 'message' && f.message.text === 'one more'));
  // A message without a reply is not a reply.
  c.send({ type: 'send', conversationId: 'rpm', text: 'just a note', reply: false });
  assert.is((await c.next('message', (m) => m.message.text === 'just a note')).message.text, 'just a note');
});

const SECRET = 'quota-test-secret-quota-test-secret';
const tokenFor = (sub: string) =>
  new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

async function as(sub: string): Promise<TestClient> {
  const c = await stack!.connect({ hello: false });
  c.send({ type: 'hello', token: await tokenFor(sub) });
  await c.next('welcome');
  return c;
}

test('a token quota is enforced during a reply and before the next, across all of a user\'s sockets', async () => {
  const words = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
  stack = await startStack({
    env: { AUTH_JWT_SECRET: SECRET, TOKEN_QUOTA: '40', MAX_ACTIVE_REPLIES: '10' },
    tokenDelayMs: 2,
    plan: () => ({ text: words }),
  });
  const tab1 = await as('quota-user');
  tab1.send({ type: 'send', conversationId: 'q1', text: 'write a lot' });
  const end = await tab1.next('reply.end');
  assert.is(end.finishReason, 'error');
  assert.is(end.error?.code, 'quota_exceeded');
  const req = stack.model.requests[0]!;
  await req.closed;
  assert.ok(req.aborted, 'the reply was stopped upstream');
  assert.ok(req.tokensSent < 200);

  // The same user on another socket: nothing left, nothing appended, no upstream call.
  const tab2 = await as('quota-user');
  tab2.send({ type: 'send', conversationId: 'q2', text: 'more please', ref: 'm' });
  const err = await tab2.next('error');
  assert.is(err.code, 'quota_exceeded');
  assert.is(err.ref, 'm');
  assert.is(stack.model.requests.length, 1);

  // Another user has their own quota.
  const other = await as('someone-else');
  other.send({ type: 'send', conversationId: 'q3', text: 'hi', options: { maxTokens: 5 } });
  assert.is((await other.next('reply.end')).finishReason, 'length');
});

test('messages per minute per user, with or without a reply: rate_limited, nothing appended', async () => {
  stack = await startStack({ env: { MESSAGES_PER_MINUTE: '3' } });
  const c = await stack.connect();
  for (let i = 0; i < 3; i++) c.send({ type: 'send', conversationId: 'mpm', text: `note ${i}`, reply: false });
  c.send({ type: 'send', conversationId: 'mpm', text: 'one too many', reply: false, ref: 'x' });
  const err = await c.next('error');
  assert.is(err.code, 'rate_limited');
  assert.is(err.ref, 'x');
  assert.is(c.frames.filter((f) => f.type === 'message').length, 3);
});

test('a send refused by the model check still counts against MESSAGES_PER_MINUTE', async () => {
  stack = await startStack({ env: { MESSAGES_PER_MINUTE: '2' } });
  const c = await stack.connect();
  for (const ref of ['f1', 'f2']) {
    c.send({ type: 'send', conversationId: 'mpm', text: 'hi', options: { model: 'not-allowed' }, ref });
    assert.is((await c.next('error')).code, 'forbidden');
  }
  c.send({ type: 'send', conversationId: 'mpm', text: 'a note', reply: false, ref: 'n' });
  const err = await c.next('error');
  assert.equal([err.code, err.ref], ['rate_limited', 'n']);
  assert.not.ok(c.frames.some((f) => f.type === 'message'));
});

test('a model not on the allow-list is forbidden', async () => {
  stack = await startStack({ env: { ALLOWED_MODELS: 'small-model' }, plan: () => ({ text: 'ok' }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'm', text: 'hi', options: { model: 'very-expensive-model' }, ref: 'e' });
  assert.is((await c.next('error')).code, 'forbidden');
  c.send({ type: 'send', conversationId: 'm', text: 'hi', options: { model: 'small-model' } });
  assert.is((await c.next('reply.start')).model, 'small-model');
  await c.next('reply.end');
  assert.is(stack.model.requests.length, 1);
  assert.is(z.object({ model: z.string() }).parse(stack.model.requests[0]!.body).model, 'small-model');
});

test('ALLOWED_MODELS=* lets any model through', async () => {
  stack = await startStack({ env: { ALLOWED_MODELS: '*' }, plan: () => ({ text: 'ok' }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'any', text: 'hi', options: { model: 'some-model-nobody-listed' } });
  assert.is((await c.next('reply.start')).model, 'some-model-nobody-listed');
  assert.is((await c.next('reply.end')).finishReason, 'stop');
  assert.is(z.object({ model: z.string() }).parse(stack.model.requests[0]!.body).model, 'some-model-nobody-listed');
});

test('TOKEN_QUOTA=0 means no quota: a long reply completes, and the next one starts', async () => {
  const words = Array.from({ length: 500 }, (_, i) => `word${i}`).join(' ');
  stack = await startStack({ env: { TOKEN_QUOTA: '0' }, tokenDelayMs: 0, plan: () => ({ text: words }) });
  const c = await stack.connect();
  for (const text of ['first', 'second']) {
    c.send({ type: 'send', conversationId: 'nq', text });
    const start = await c.next('reply.start');
    assert.is((await c.next('reply.end')).finishReason, 'stop', text);
    assert.is(replyText(c.frames, start.replyId), words);
  }
});

test.run();
