// Data-protection requests: the operator exports everything the relay holds
// about one user, then erases it. The user's own conversation goes for
// everyone; in someone else's, their words (and the replies to them) go but
// the conversation stays whole; their files, API keys and list go; the usage
// ledger, which holds no text, stays. Afterwards the text is nowhere in the
// backend. On every backend.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import type { Store } from '../../server/backend/store.js';
import { placesHolding } from '../backend-scan.js';
import { startStack, type Stack, type TestClient } from '../helpers.js';

const ADMIN = 'admin-token-for-the-erase-tests-0123';
let stack: Stack;
let store: Store;
test.before.each(async () => {
  stack = await startStack({ env: { ADMIN_TOKEN: ADMIN }, wrapStore: (s) => (store = s), plan: (req) => ({ text: `answer to ${req.messages.at(-1)?.content}` }) });
});
test.after.each(async () => {
  await stack.close();
});

const base = () => `http://127.0.0.1:${stack.relay.port}`;
const admin = (method: string, path: string, token = ADMIN) => fetch(`${base()}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

const Export = z.object({
  userId: z.string(),
  conversations: z.array(z.object({ conversationId: z.string(), role: z.string().optional(), messages: z.array(z.object({ role: z.string(), text: z.string() })) })),
  usage: z.array(z.object({ conversationId: z.string() })),
  attachments: z.array(z.object({ id: z.string(), bytes: z.number() })),
  apiKeys: z.array(z.object({ id: z.string() })),
});

async function exchange(c: TestClient, conversationId: string, text: string): Promise<void> {
  c.send({ type: 'send', conversationId, text });
  const m = await c.next('message', (f) => f.message.text === text);
  await c.next('reply.end', (e) => e.replyId === m.replyId);
}

test('export shows what the relay holds about a user; erase removes it, and only it', async () => {
  const ann = await stack.connect();
  const bob = await stack.connect();
  const welcome = await ann.waitFor('welcome');
  const annId = welcome.user.id;
  await exchange(ann, 'ann-diary', 'ann private diary entry');
  await exchange(bob, 'bob-room', 'bob opening line');
  await exchange(ann, 'bob-room', 'ann confides a secret');
  await exchange(bob, 'bob-room', 'bob carries on');
  const upload = await fetch(`${base()}/attachments?name=note.txt`, { method: 'POST', body: 'ann uploaded notes', headers: { 'content-type': 'text/plain', authorization: `Bearer ${welcome.sessionToken}` } });
  assert.is(upload.status, 201);
  const file = z.object({ id: z.string() }).parse(await upload.json());
  const key = await fetch(`${base()}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: annId }) });
  assert.is(key.status, 201);

  const exported = Export.parse(await (await admin('GET', `/admin/users/${encodeURIComponent(annId)}`)).json());
  const byId = new Map(exported.conversations.map((c) => [c.conversationId, c]));
  assert.equal([...byId.keys()].sort(), ['ann-diary', 'bob-room']);
  assert.is(byId.get('ann-diary')!.role, 'owner');
  assert.equal(byId.get('bob-room')!.messages.map((m) => m.text), ['ann confides a secret', 'answer to ann confides a secret'], "only ann's words and the replies to them");
  assert.is(exported.usage.length, 2, 'both replies ann asked for');
  assert.equal(exported.attachments.map((a) => a.id), [file.id]);
  assert.is(exported.apiKeys.length, 1);

  const erase = await admin('DELETE', `/admin/users/${encodeURIComponent(annId)}`);
  assert.is(erase.status, 200);
  assert.equal(await erase.json(), { userId: annId, conversationsDeleted: 1, conversationsErased: 1, messagesErased: 2, attachmentsRemoved: 1, apiKeysRevoked: 1 });

  // Bob's conversation is whole, with ann's turn emptied in place.
  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'bob-room' });
  const history = (await late.next('joined')).history;
  assert.equal(
    history.map((m) => [m.role, m.text, m.redacted ?? false]),
    [
      ['user', 'bob opening line', false],
      ['assistant', 'answer to bob opening line', false],
      ['user', '', true],
      ['assistant', '', true],
      ['user', 'bob carries on', false],
      ['assistant', 'answer to bob carries on', false],
    ],
  );
  assert.is(history[2]!.author?.name, 'erased user');
  late.send({ type: 'join', conversationId: 'ann-diary', ref: 'diary' });
  const diary = await late.answerTo('diary');
  assert.ok(diary.type === 'error' && diary.code === 'not_found', "ann's own conversation is gone");
  assert.is((await fetch(`${base()}/attachments/${file.id}`, { headers: { authorization: `Bearer ${welcome.sessionToken}` } })).status, 404);
  const after = Export.parse(await (await admin('GET', `/admin/users/${encodeURIComponent(annId)}`)).json());
  assert.equal({ conversations: after.conversations.length, attachments: after.attachments.length, apiKeys: after.apiKeys.length }, { conversations: 0, attachments: 0, apiKeys: 0 });
  assert.is(after.usage.length, 2, 'the usage ledger (no text) is kept');

  const redis = stack.redisPrefix ? { url: process.env.TEST_REDIS_URL!, prefix: stack.redisPrefix } : undefined;
  for (const text of ['ann private diary entry', 'ann confides a secret', 'ann uploaded notes']) assert.equal(await placesHolding({ store, redis }, text), [], `"${text}" is nowhere`);
  assert.ok((await placesHolding({ store, redis }, 'bob carries on')).length > 0, "bob's words are still there");
});

test('the admin endpoint wants the admin token, a user id, and GET or DELETE', async () => {
  assert.is((await admin('GET', '/admin/users/someone', 'wrong-token-wrong-token')).status, 401);
  assert.is((await admin('POST', '/admin/users/someone')).status, 405);
  assert.is((await admin('GET', '/admin/users/')).status, 404);
  assert.is((await admin('GET', `/admin/users/${'x'.repeat(200)}`)).status, 404);
  const nobody = Export.parse(await (await admin('GET', `/admin/users/${randomUUID()}`)).json());
  assert.equal({ conversations: nobody.conversations, usage: nobody.usage }, { conversations: [], usage: [] });
});

test.run();
