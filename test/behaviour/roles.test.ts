// Owners, members and viewers: a viewer watches but may not write; a member
// may not configure or hand out roles; a private conversation lets in only
// users given a role; a user taken out is told and may not come back; a JWT
// `roles` claim grants a role per conversation pattern. On every backend.
import { SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack, type TestClient } from '../helpers.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET }, plan: () => ({ text: 'word '.repeat(200), tokenDelayMs: 3 }) });
});
test.after.each(async () => {
  await stack.close();
});

/** A socket signed in as `sub`, with the token's claims. */
async function as(sub: string, claims: Record<string, unknown> = {}): Promise<TestClient> {
  const token = await new SignJWT({ sub, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(SECRET));
  const c = await stack.connect({ hello: false });
  c.send({ type: 'hello', token });
  await c.next('welcome');
  return c;
}

async function refusal(c: TestClient, frame: Parameters<TestClient['send']>[0] & { ref: string }): Promise<string | undefined> {
  c.send(frame);
  const answer = await c.answerTo(frame.ref);
  return answer.type === 'error' ? answer.code : undefined;
}

async function join(c: TestClient, conversationId: string) {
  c.send({ type: 'join', conversationId, ref: `join-${conversationId}` });
  return c.answerTo(`join-${conversationId}`);
}

test('the owner makes a member a viewer: it still sees everything, but may not send, cancel or change anything', async () => {
  const ann = await as('ann');
  const bob = await as('bob');
  ann.send({ type: 'send', conversationId: 'club', text: 'welcome', reply: false });
  await ann.next('message');
  const joined = await join(bob, 'club');
  assert.ok(joined.type === 'joined' && joined.role === 'member' && joined.owner === 'ann');

  assert.is(await refusal(bob, { type: 'role', conversationId: 'club', userId: 'bob', role: 'owner', ref: 'self' }), 'forbidden', 'a member hands out no roles');
  ann.send({ type: 'role', conversationId: 'club', userId: 'bob', role: 'viewer', ref: 'demote' });
  const change = await bob.next('role');
  assert.equal({ userId: change.userId, role: change.role, by: change.author.id }, { userId: 'bob', role: 'viewer', by: 'ann' });

  assert.is(await refusal(bob, { type: 'send', conversationId: 'club', text: 'hi', ref: 's' }), 'forbidden');
  ann.send({ type: 'send', conversationId: 'club', text: 'a long answer please' });
  const start = await bob.next('reply.start');
  assert.is(await refusal(bob, { type: 'cancel', conversationId: 'club', ref: 'c' }), 'forbidden');
  assert.is(await refusal(bob, { type: 'configure', conversationId: 'club', title: 'x', ref: 'cfg' }), 'forbidden');
  const end = await bob.next('reply.end', (e) => e.replyId === start.replyId);
  assert.is(end.finishReason, 'stop', 'the viewer watched the whole reply, and could not stop it');
  const again = await join(bob, 'club');
  assert.ok(again.type === 'joined' && again.role === 'viewer');
  assert.is(await refusal(ann, { type: 'role', conversationId: 'club', userId: 'ann', role: 'viewer', ref: 'ownself' }), 'forbidden', 'the creator stays owner');
});

test('private: a stranger may not join; given a role they may; taken out, they are told and may not come back', async () => {
  const ann = await as('ann');
  const eve = await as('eve');
  ann.send({ type: 'join', conversationId: 'secret' });
  await ann.next('joined');
  ann.send({ type: 'configure', conversationId: 'secret', visibility: 'private', ref: 'p' });
  await ann.next('settings', (s) => s.ref === 'p');

  const refused = await join(eve, 'secret');
  assert.ok(refused.type === 'error' && refused.code === 'forbidden', 'a stranger may not join');
  assert.is(await refusal(eve, { type: 'send', conversationId: 'secret', text: 'let me in', ref: 'knock' }), 'forbidden', 'nor write in');

  ann.send({ type: 'role', conversationId: 'secret', userId: 'eve', role: 'member', ref: 'invite' });
  await ann.next('role', (r) => r.ref === 'invite');
  const inside = await join(eve, 'secret');
  assert.ok(inside.type === 'joined' && inside.role === 'member', 'the invited user joins');
  eve.send({ type: 'send', conversationId: 'secret', text: 'thanks', reply: false, ref: 'hi' });
  assert.is((await eve.answerTo('hi')).type, 'message');

  ann.send({ type: 'remove', conversationId: 'secret', userId: 'eve', ref: 'out' });
  const left = await eve.next('left', (f) => f.conversationId === 'secret');
  assert.is(left.reason, 'removed');
  const back = await join(eve, 'secret');
  assert.ok(back.type === 'error' && back.code === 'forbidden', 'a removed user may not come back');
  const presence = await ann.next('presence', (p) => !p.members.some((m) => m.id === 'eve'));
  assert.ok(presence.members.some((m) => m.id === 'ann'));
});

test('an invite token lets its holder into a private conversation with its role, kept afterwards; a taken-out user stays out', async () => {
  const ann = await as('ann');
  const eve = await as('eve');
  const mallory = await as('mallory');
  ann.send({ type: 'join', conversationId: 'vault' });
  await ann.next('joined');
  ann.send({ type: 'configure', conversationId: 'vault', visibility: 'private', ref: 'p' });
  await ann.next('settings', (f) => f.ref === 'p');
  ann.send({ type: 'invite', conversationId: 'vault', role: 'viewer', ref: 'inv' });
  const invited = await ann.next('invited', (f) => f.ref === 'inv');
  assert.is(invited.role, 'viewer');
  assert.ok(invited.expiresAt > Date.now());

  eve.send({ type: 'join', conversationId: 'vault', invite: invited.token, ref: 'in' });
  const inside = await eve.answerTo('in');
  assert.ok(inside.type === 'joined' && inside.role === 'viewer', 'the invite gives its role');
  const granted = await ann.next('role', (r) => r.userId === 'eve');
  assert.equal({ role: granted.role, by: granted.author.id }, { role: 'viewer', by: 'ann' });
  const again = await join(eve, 'vault');
  assert.ok(again.type === 'joined' && again.role === 'viewer', 'the role is kept: no token needed again');

  mallory.send({ type: 'join', conversationId: 'vault', invite: `${invited.token}x`, ref: 'forged' });
  const forged = await mallory.answerTo('forged');
  assert.ok(forged.type === 'error' && forged.code === 'forbidden', 'a forged token');
  mallory.send({ type: 'join', conversationId: 'elsewhere', ref: 'own' });
  await mallory.answerTo('own');
  mallory.send({ type: 'configure', conversationId: 'elsewhere', visibility: 'private', ref: 'p2' });
  await mallory.next('settings');
  mallory.send({ type: 'join', conversationId: 'vault', invite: (await inviteFor(mallory, 'elsewhere')).token, ref: 'other' });
  const other = await mallory.answerTo('other');
  assert.ok(other.type === 'error' && other.code === 'forbidden', "another conversation's invite");
  assert.is(await refusal(eve, { type: 'invite', conversationId: 'vault', ref: 'mine' }), 'forbidden', 'only the owner invites');

  ann.send({ type: 'remove', conversationId: 'vault', userId: 'eve', ref: 'out' });
  await eve.next('left', (f) => f.conversationId === 'vault');
  eve.send({ type: 'join', conversationId: 'vault', invite: invited.token, ref: 'back' });
  const back = await eve.answerTo('back');
  assert.ok(back.type === 'error' && back.code === 'forbidden', 'an invite does not bring back a user taken out');
});

test('over the OpenAI HTTP API too: a stranger is refused a private conversation, a viewer may not post', async () => {
  const ann = await as('ann');
  ann.send({ type: 'join', conversationId: 'closed' });
  await ann.next('joined');
  ann.send({ type: 'configure', conversationId: 'closed', visibility: 'private', ref: 'p' });
  await ann.next('settings', (f) => f.ref === 'p');
  const post = async (sub: string, claims: Record<string, unknown> = {}) => {
    const token = await new SignJWT({ sub, ...claims }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(SECRET));
    const res = await fetch(`http://127.0.0.1:${stack.relay.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-conversation-id': 'closed' },
      body: JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'let me in' }] }),
    });
    return res.status;
  };
  assert.is(await post('eve'), 403, 'a stranger');
  assert.is(await post('watcher', { roles: { 'clo*': 'viewer' } }), 403, 'a viewer by token');
  assert.is(await post('helper', { roles: { closed: 'member' } }), 200, 'a member by token');
});

test('files of a conversation follow its roles: a member fetches them, a user taken out no more, nobody once it is deleted', async () => {
  const sign = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(SECRET));
  const base = `http://127.0.0.1:${stack.relay.port}`;
  const ann = await as('ann');
  const eve = await as('eve');
  const upload = await fetch(`${base}/attachments?name=plan.txt`, { method: 'POST', body: 'the plan', headers: { 'content-type': 'text/plain', authorization: `Bearer ${await sign('ann')}` } });
  const { id } = (await upload.json()) as { id: string };
  ann.send({ type: 'send', conversationId: 'files', text: 'see attached', attachments: [id], reply: false });
  await ann.next('message');
  assert.is((await join(eve, 'files')).type, 'joined');
  const fetchAs = async (sub: string) => (await fetch(`${base}/attachments/${id}`, { headers: { authorization: `Bearer ${await sign(sub)}` } })).status;
  assert.is(await fetchAs('eve'), 200, 'a member');
  ann.send({ type: 'remove', conversationId: 'files', userId: 'eve', ref: 'out' });
  await eve.next('left');
  assert.is(await fetchAs('eve'), 403, 'taken out');
  assert.is(await fetchAs('zed'), 200, 'anyone the open conversation lets in');
  ann.send({ type: 'delete', conversationId: 'files' });
  await ann.next('left', (f) => f.reason === 'deleted');
  assert.is(await fetchAs('zed'), 403, 'not through a deleted conversation');
  assert.is(await fetchAs('ann'), 200, 'the uploader keeps their own file until it expires');
});

test('bad role, remove and invite frames are refused in the protocol\'s shape, and change nothing', async () => {
  const ann = await as('ann');
  ann.send({ type: 'send', conversationId: 'strict', text: 'mine', reply: false });
  await ann.next('message');
  const bad = async (frame: Record<string, unknown>) => {
    ann.ws.send(JSON.stringify({ ...frame, conversationId: 'strict', ref: 'b' }));
    const answer = await ann.answerTo('b');
    return answer.type === 'error' ? answer.code : answer.type;
  };
  assert.is(await bad({ type: 'role', userId: 'eve', role: 'admin' }), 'bad_frame', 'an unknown role');
  assert.is(await bad({ type: 'role', userId: '', role: 'member' }), 'bad_frame', 'an empty user id');
  assert.is(await bad({ type: 'remove', userId: 'x'.repeat(129) }), 'bad_frame', 'a user id over its bound');
  assert.is(await bad({ type: 'invite', role: 'owner' }), 'bad_frame', 'an invite may not make owners');
  assert.is(await bad({ type: 'invite', ttlMs: 1_000 }), 'bad_frame', 'an invite shorter than a minute');
  assert.is(await bad({ type: 'invite', ttlMs: 31 * 24 * 3_600_000 }), 'bad_frame', 'an invite longer than 30 days');
  const bob = await as('bob');
  const joined = await join(bob, 'strict');
  assert.ok(joined.type === 'joined' && joined.role === 'member', 'no role was given by the refused frames');
});

async function inviteFor(owner: TestClient, conversationId: string) {
  owner.send({ type: 'invite', conversationId, ref: `inv-${conversationId}` });
  return owner.next('invited', (f) => f.ref === `inv-${conversationId}`);
}

test('a JWT roles claim grants a role by conversation pattern', async () => {
  const ann = await as('ann');
  for (const id of ['support-1', 'lobby']) {
    ann.send({ type: 'send', conversationId: id, text: 'open', reply: false });
    await ann.next('message', (m) => m.conversationId === id);
  }
  const agent = await as('agent', { roles: { 'support-*': 'viewer', 'vip-*': 'member' } });
  const watching = await join(agent, 'support-1');
  assert.ok(watching.type === 'joined' && watching.role === 'viewer');
  assert.is(await refusal(agent, { type: 'send', conversationId: 'support-1', text: 'hi', ref: 'w' }), 'forbidden');
  const open = await join(agent, 'lobby');
  assert.ok(open.type === 'joined' && open.role === 'member', 'elsewhere an open conversation lets them in as a member');

  // The owner's word for their own conversation counts over the token's.
  ann.send({ type: 'role', conversationId: 'support-1', userId: 'agent', role: 'member', ref: 'up' });
  await ann.next('role', (r) => r.ref === 'up');
  agent.send({ type: 'send', conversationId: 'support-1', text: 'hello', reply: false, ref: 'now' });
  assert.is((await agent.answerTo('now')).type, 'message');
});

test.run();
