import { SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { PRESENCE_COALESCE_MS: '30', TYPING_MIN_INTERVAL_MS: '60000' } });
});
test.after.each(async () => {
  await stack.close();
});

const ids = (members: Array<{ id: string }>) => members.map((m) => m.id).sort();

test('presence follows joins, leaves and disconnects; a burst of joins gives one frame', async () => {
  const a = await stack.connect();
  const me = (await a.waitFor('welcome')).user;
  a.send({ type: 'join', conversationId: 'p' });
  const first = await a.next('presence');
  assert.equal(ids(first.members), [me.id]);

  const others = await Promise.all([stack.connect(), stack.connect(), stack.connect()]);
  for (const o of others) o.send({ type: 'join', conversationId: 'p' });
  const burst = await a.next('presence', (p) => p.members.length === 4);
  assert.is(burst.members.length, 4);
  assert.is(a.frames.filter((f) => f.type === 'presence').length, 2, 'one frame for the burst of three joins');

  others[0]!.send({ type: 'leave', conversationId: 'p' });
  assert.is((await a.next('presence')).members.length, 3);
  others[1]!.kill();
  assert.is((await a.next('presence')).members.length, 2);
});

test('a user with two sockets (two tabs) in the room is listed once', async () => {
  const secret = 'presence-test-secret-presence-test-secret';
  await stack.close();
  stack = await startStack({ env: { AUTH_JWT_SECRET: secret, PRESENCE_COALESCE_MS: '30' } });
  const token = await new SignJWT({ sub: 'same-user', name: 'Tabby' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(secret));
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const tab = await stack.connect({ hello: false });
    tab.send({ type: 'hello', token });
    await tab.next('welcome');
    tab.send({ type: 'join', conversationId: 'dup' });
    await tab.next('joined');
    tabs.push(tab);
  }
  const p = await tabs[1]!.next('presence');
  assert.equal(p.members, [{ id: 'same-user', name: 'Tabby' }]);
  assert.is(stack.relay.stats().sockets, 2);
});

test('typing is relayed to the other members, not echoed, and throttled', async () => {
  const a = await stack.connect();
  const b = await stack.connect();
  a.send({ type: 'join', conversationId: 't' });
  b.send({ type: 'join', conversationId: 't' });
  await a.next('joined');
  await b.next('joined');
  a.send({ type: 'typing', conversationId: 't' });
  a.send({ type: 'typing', conversationId: 't' });
  a.send({ type: 'typing', conversationId: 't' });
  const typing = await b.next('typing');
  assert.is(typing.conversationId, 't');
  a.send({ type: 'ping', ref: 's' });
  await a.next('pong');
  b.send({ type: 'ping', ref: 's' });
  await b.next('pong');
  assert.is(b.frames.filter((f) => f.type === 'typing').length, 1, 'three typing frames within the interval relay once');
  assert.is(a.frames.filter((f) => f.type === 'typing').length, 0, 'not echoed to the typist');
});

test('typing in a conversation the socket is not in answers not_found', async () => {
  const a = await stack.connect();
  a.send({ type: 'typing', conversationId: 'elsewhere', ref: 'ty' });
  const err = await a.next('error');
  assert.is(err.code, 'not_found');
  assert.is(err.ref, 'ty');
});

test.run();
