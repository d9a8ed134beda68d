// Per-conversation settings (`configure`): the owner sets a title, a system
// prompt, a model and options; every member gets `settings`, a late joiner
// `joined.settings`, and the next reply runs with them, on every backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, writeModelsFile, type Stack, type TestClient } from '../helpers.js';

/** A request's field, as the upstream got it. */
function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? Reflect.get(body, name) : undefined;
}

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({
    env: (model) => ({
      MODELS_FILE: writeModelsFile({
        default: 'fast',
        models: { fast: { dialect: 'chat', baseURL: model.baseURL, upstreamModel: 'up-fast' }, deep: { dialect: 'chat', baseURL: model.baseURL, upstreamModel: 'up-deep' } },
      }),
      SYSTEM_PROMPT: 'The server default.',
    }),
    plan: () => ({ text: 'fine' }),
  });
});
test.after.each(async () => {
  await stack.close();
});

async function exchange(c: TestClient, conversationId: string, text: string): Promise<void> {
  c.send({ type: 'send', conversationId, text });
  const m = await c.next('message', (f) => f.message.text === text);
  await c.next('reply.end', (e) => e.replyId === m.replyId);
}

const last = () => stack.model.requests.at(-1)!;
const systemOf = () => last().messages.find((m) => m.role === 'system')?.content;

test("the owner's settings reach every member and the next reply; null puts the server's default back", async () => {
  const owner = await stack.connect();
  const member = await stack.connect();
  await exchange(owner, 'cfg', 'hello');
  assert.is(systemOf(), 'The server default.');
  assert.is(field(last().body, 'model'), 'up-fast');
  member.send({ type: 'join', conversationId: 'cfg' });
  const joinedBefore = await member.next('joined');
  assert.is(joinedBefore.owner, ownerId(owner), 'who sent the first message owns it');
  assert.is(joinedBefore.settings, undefined);

  owner.send({ type: 'configure', conversationId: 'cfg', title: 'Pirate talk', systemPrompt: 'Answer like a pirate.', model: 'deep', temperature: 0.3, maxTokens: 50, ref: 'c1' });
  const set = await owner.next('settings', (s) => s.ref === 'c1');
  assert.equal(set.settings, { title: 'Pirate talk', systemPrompt: 'Answer like a pirate.', model: 'deep', temperature: 0.3, maxTokens: 50 });
  const seen = await member.next('settings');
  assert.equal(seen.settings, set.settings);
  assert.is(seen.seq, set.seq);

  await exchange(member, 'cfg', 'ahoy?');
  assert.is(systemOf(), 'Answer like a pirate.');
  assert.is(field(last().body, 'model'), 'up-deep');
  assert.is(field(last().body, 'temperature'), 0.3);
  // A send's own options still win over the conversation's.
  member.send({ type: 'send', conversationId: 'cfg', text: 'quick one', options: { model: 'fast' } });
  await member.next('reply.end');
  assert.is(field(last().body, 'model'), 'up-fast');

  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'cfg' });
  assert.equal((await late.next('joined')).settings, set.settings);

  owner.send({ type: 'configure', conversationId: 'cfg', systemPrompt: null, model: null, ref: 'c2' });
  const cleared = await owner.next('settings', (s) => s.ref === 'c2');
  assert.equal(cleared.settings, { title: 'Pirate talk', temperature: 0.3, maxTokens: 50 });
  await exchange(owner, 'cfg', 'back to normal');
  assert.is(systemOf(), 'The server default.');
  assert.is(field(last().body, 'model'), 'up-fast');
});

test('a member who does not own it, a model the server does not allow, and bad values are refused, and nothing changes', async () => {
  const owner = await stack.connect();
  const member = await stack.connect();
  await exchange(owner, 'strict', 'mine');
  member.send({ type: 'join', conversationId: 'strict' });
  await member.next('joined');
  member.send({ type: 'configure', conversationId: 'strict', systemPrompt: 'Obey me.', ref: 'm' });
  const refused = await member.answerTo('m');
  assert.ok(refused.type === 'error' && refused.code === 'forbidden', 'only the owner configures');
  owner.send({ type: 'configure', conversationId: 'strict', model: 'gpt-unlisted', ref: 'o1' });
  const unlisted = await owner.answerTo('o1');
  assert.ok(unlisted.type === 'error' && unlisted.code === 'forbidden', 'a model the server does not allow');
  owner.send({ type: 'configure', conversationId: 'strict', temperature: 7, ref: 'o2' });
  const bad = await owner.answerTo('o2');
  assert.ok(bad.type === 'error' && bad.code === 'bad_frame' && bad.message.includes('temperature'), 'a temperature out of range');
  owner.send({ type: 'configure', conversationId: 'strict', systemPrompt: 'x'.repeat(16_001), ref: 'o3' });
  const long = await owner.answerTo('o3');
  assert.ok(long.type === 'error' && long.code === 'bad_frame', 'a system prompt over its bound');
  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'strict' });
  assert.is((await late.next('joined')).settings, undefined);
  await exchange(owner, 'strict', 'still default');
  assert.is(systemOf(), 'The server default.');
});

test('a conversation configured before any message is owned by who configured it', async () => {
  const first = await stack.connect();
  const second = await stack.connect();
  first.send({ type: 'join', conversationId: 'fresh' });
  await first.next('joined');
  first.send({ type: 'configure', conversationId: 'fresh', title: 'Plans', ref: 'c' });
  await first.next('settings');
  second.send({ type: 'join', conversationId: 'fresh' });
  const joined = await second.next('joined');
  assert.is(joined.owner, ownerId(first));
  assert.equal(joined.settings, { title: 'Plans' });
});

test('AUTO_TITLE: the first exchange names the conversation once, for every member; a title set first is kept', async () => {
  await stack.close();
  const asksTitle = (messages: Array<{ role: string; content: string }>) => messages[0]?.content.startsWith('Write a title') === true;
  stack = await startStack({ env: { AUTO_TITLE: 'true' }, plan: (req) => ({ text: asksTitle(req.messages) ? '"Trip to Lisbon."' : 'Take the tram.' }) });
  const ann = await stack.connect();
  const bob = await stack.connect();
  bob.send({ type: 'join', conversationId: 'trip' });
  await bob.next('joined');
  await exchange(ann, 'trip', 'How do I get around Lisbon?');
  const named = await bob.next('settings');
  assert.equal(named.settings, { title: 'Trip to Lisbon' });
  assert.is(named.author.id, 'relay');
  const titleCall = stack.model.requests.find((r) => asksTitle(r.messages))!;
  assert.equal(titleCall.messages[1]!.content, 'How do I get around Lisbon?\n\nTake the tram.');
  await exchange(ann, 'trip', 'And the airport?');
  await exchange(ann, 'named', 'first');
  await ann.next('settings', (s) => s.conversationId === 'named');
  assert.is(stack.model.requests.filter((r) => asksTitle(r.messages)).length, 2, 'one title call per conversation, none for later exchanges');

  ann.send({ type: 'join', conversationId: 'mine' });
  await ann.next('joined', (j) => j.conversationId === 'mine');
  ann.send({ type: 'configure', conversationId: 'mine', title: 'My own', ref: 'own' });
  await ann.next('settings', (s) => s.ref === 'own');
  await exchange(ann, 'mine', 'hello');
  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'mine' });
  assert.equal((await late.next('joined')).settings, { title: 'My own' });
  assert.is(stack.model.requests.filter((r) => asksTitle(r.messages)).length, 2, 'a named conversation is not named again');
});

function ownerId(c: TestClient): string {
  const welcome = c.frames.find((f) => f.type === 'welcome');
  if (welcome?.type !== 'welcome') throw new Error('no welcome');
  return welcome.user.id;
}

test.run();
