// The conversation list lives on the server: a user's other socket (another
// device) sees the conversations they were in, newest activity first, with
// titles and unread state, a page at a time; after a restart on a durable
// backend it is still there. Delete removes a conversation for everyone,
// stops its reply, and leaves nothing of its text behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Store } from '../../server/backend/store.js';
import { placesHolding } from '../backend-scan.js';
import { backend, eventually, startStack, TestClient, type Stack } from '../helpers.js';

const SECRET = 'a-session-secret-for-the-list-tests-0123456789';
let stack: Stack;
let env: Record<string, string>;
let dataDir: string | undefined;
let store: Store;

test.before.each(async () => {
  // One backend location for both lives of the relay in the restart test.
  dataDir = backend() === 'sqlite' ? mkdtempSync(join(tmpdir(), 'relay-list-')) : undefined;
  env = { SESSION_SECRET: SECRET, ...(dataDir ? { DATA_DIR: dataDir } : {}), ...(backend() === 'redis' ? { REDIS_PREFIX: `list-${randomUUID()}:` } : {}) };
  stack = await startStack({ env, wrapStore: (s) => (store = s), plan: (req) => ({ text: req.messages.at(-1)?.content === 'long' ? 'word '.repeat(400) : 'ok', tokenDelayMs: 2 }) });
});
test.after.each(async () => {
  await stack.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A second socket of the same anonymous user: the session token from the first one's welcome. */
async function sameUser(first: TestClient): Promise<TestClient> {
  const welcome = await first.waitFor('welcome');
  const again = await stack.connect({ hello: false });
  again.send({ type: 'hello', token: welcome.sessionToken });
  const back = await again.next('welcome');
  assert.is(back.user.id, welcome.user.id);
  return again;
}

async function exchange(c: TestClient, conversationId: string, text: string): Promise<void> {
  c.send({ type: 'send', conversationId, text });
  const m = await c.next('message', (f) => f.message.text === text);
  await c.next('reply.end', (e) => e.replyId === m.replyId);
}

async function list(c: TestClient, page: { before?: number; limit?: number } = {}) {
  const ref = randomUUID().slice(0, 8);
  c.send({ type: 'list', ref, ...page });
  const answer = await c.next('conversations', (f) => f.ref === ref);
  return { rows: answer.conversations.map((s) => `${s.conversationId}:${s.title ?? '-'}:${s.unread ? 'unread' : 'read'}`), next: answer.next, answer };
}

test("another socket of the same user lists their conversations, newest first, with titles, unread state and pages", async () => {
  const ann = await stack.connect();
  await exchange(ann, 'list-one', 'first');
  ann.send({ type: 'configure', conversationId: 'list-one', title: 'Groceries', ref: 't' });
  await ann.next('settings');
  await exchange(ann, 'list-two', 'second');
  for (const id of ['list-one', 'list-two']) {
    ann.send({ type: 'leave', conversationId: id });
    await ann.next('left', (f) => f.conversationId === id);
  }
  const other = await sameUser(ann);
  assert.equal((await list(other)).rows, ['list-two:-:read', 'list-one:Groceries:read']);

  // Someone else writes in the first one while ann is away: it comes to the top, unread.
  const bob = await stack.connect();
  await exchange(bob, 'list-one', 'news');
  assert.equal((await list(other)).rows, ['list-one:Groceries:unread', 'list-two:-:read']);
  assert.equal((await list(bob)).rows, ['list-one:Groceries:read'], "bob's list has only his");

  const first = await list(other, { limit: 1 });
  assert.equal(first.rows, ['list-one:Groceries:unread']);
  assert.ok(first.next !== undefined);
  const second = await list(other, { limit: 1, before: first.next });
  assert.equal(second.rows, ['list-two:-:read']);
  assert.is(second.next, undefined, 'the last page says so');
  assert.ok(first.answer.conversations[0]!.lastActivity >= second.answer.conversations[0]!.lastActivity);
});

test('bad list requests are refused in the protocol\'s shape', async () => {
  const c = await stack.connect();
  c.send({ type: 'list', limit: 0, ref: 'zero' });
  const zero = await c.answerTo('zero');
  assert.ok(zero.type === 'error' && zero.code === 'bad_frame');
  c.send({ type: 'list', limit: 101, ref: 'big' });
  const big = await c.answerTo('big');
  assert.ok(big.type === 'error' && big.code === 'bad_frame');
  c.send({ type: 'list', ref: 'none' });
  const none = await c.answerTo('none');
  assert.ok(none.type === 'conversations' && none.conversations.length === 0);
});

test('delete while a reply streams: the reply ends, the upstream request is aborted, every member is told, and nothing is left', async () => {
  const owner = await stack.connect();
  const member = await stack.connect();
  await exchange(owner, 'doomed', 'keep this');
  member.send({ type: 'join', conversationId: 'doomed' });
  await member.next('joined');
  owner.send({ type: 'send', conversationId: 'doomed', text: 'long' });
  await member.next('reply.delta');
  const upstream = stack.model.requests.at(-1)!;

  // Only the owner may delete.
  member.send({ type: 'delete', conversationId: 'doomed', ref: 'no' });
  const refused = await member.answerTo('no');
  assert.ok(refused.type === 'error' && refused.code === 'forbidden');

  owner.send({ type: 'delete', conversationId: 'doomed', ref: 'go' });
  const left = await member.next('left', (f) => f.conversationId === 'doomed');
  assert.is(left.reason, 'deleted');
  await owner.next('left', (f) => f.conversationId === 'doomed' && f.reason === 'deleted');
  await eventually(() => upstream.aborted, 'the upstream saw its request closed');
  const end = member.frames.find((f) => f.type === 'reply.end' && f.replyId !== undefined && f.finishReason === 'cancelled');
  assert.ok(end, 'the streaming reply ended, cancelled, before the members were let go');

  // A resume, a join and a send all say it is gone; no list has it.
  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'doomed', since: 3, ref: 'resume' });
  const resume = await late.answerTo('resume');
  assert.ok(resume.type === 'error' && resume.code === 'not_found', 'resume says not_found');
  late.send({ type: 'send', conversationId: 'doomed', text: 'hello?', ref: 'send' });
  const send = await late.answerTo('send');
  assert.ok(send.type === 'error' && send.code === 'not_found');
  assert.equal((await list(owner)).rows, []);
  assert.equal((await list(member)).rows, []);
  await assertNoTextLeft('keep this');
});

// Memory mode keeps nothing across a restart, by design: the test is one of the durable backends' only.
const durable = backend() === 'memory' ? undefined : test;
durable?.('the list survives a restart of the relay (on a durable backend)', async () => {
  const ann = await stack.connect();
  const token = (await ann.waitFor('welcome')).sessionToken;
  await exchange(ann, 'kept', 'remember me');
  ann.send({ type: 'configure', conversationId: 'kept', title: 'Kept', ref: 't' });
  await ann.next('settings');
  await stack.close();
  stack = await startStack({ env, wrapStore: (s) => (store = s), plan: () => ({ text: 'ok' }) });
  const back = await stack.connect({ hello: false });
  back.send({ type: 'hello', token });
  await back.next('welcome');
  assert.equal((await list(back)).rows.map((r) => r.replace(/:(un)?read$/, '')), ['kept:Kept']);
});

/** The deleted conversation's text is nowhere in the backend any more: not in memory, not on disk, not in Redis. */
async function assertNoTextLeft(text: string): Promise<void> {
  const redis = stack.redisPrefix ? { url: process.env.TEST_REDIS_URL!, prefix: stack.redisPrefix } : undefined;
  assert.equal(await placesHolding({ store, redis }, text), []);
}

test.run();
