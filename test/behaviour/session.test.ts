import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { HELLO_TIMEOUT_MS: '150' } });
});
test.after.each(async () => {
  await stack.close();
});

test('no hello in time: close 4408', async () => {
  const c = await stack.connect({ hello: false });
  assert.is((await c.closed).code, 4408);
});

test('a frame other than hello first: close 4401', async () => {
  const c = await stack.connect({ hello: false });
  c.send({ type: 'join', conversationId: 'early' });
  assert.is((await c.closed).code, 4401);
});

test('malformed frames before hello get bad_frame; hello still opens the session', async () => {
  const c = await stack.connect({ hello: false });
  c.sendRaw('{{{');
  assert.is((await c.next('error')).code, 'bad_frame');
  c.sendRaw('{"type":"nonsense","ref":"n"}');
  assert.is((await c.next('error')).ref, 'n');
  c.send({ type: 'hello', ref: 'h' });
  const w = await c.next('welcome');
  assert.is(w.ref, 'h');
});

test('anonymous users get distinct generated ids and names, and a session id', async () => {
  const a = await stack.connect({ hello: false });
  const b = await stack.connect({ hello: false });
  a.send({ type: 'hello' });
  b.send({ type: 'hello', token: 'ignored-without-a-secret' });
  const wa = await a.next('welcome');
  const wb = await b.next('welcome');
  assert.is.not(wa.user.id, wb.user.id);
  assert.is.not(wa.sessionId, wb.sessionId);
  assert.ok(wa.user.name.length > 0);
});

test.run();
