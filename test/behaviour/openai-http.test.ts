// OpenAI's HTTP API on the relay, driven by the official `openai` SDK as any
// OpenAI client would: only `baseURL` and the key changed.
import OpenAI from 'openai';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

const ADMIN = 'admin-token-of-sufficient-length';
const TEXT = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
let stack: Stack;

const base = () => `http://127.0.0.1:${stack.relay.port}`;

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${base()}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

async function issue(body: Record<string, unknown> = { userId: 'alice' }): Promise<{ id: string; key: string }> {
  const res = await admin('POST', '/admin/keys', body);
  assert.is(res.status, 201);
  return (await res.json()) as { id: string; key: string };
}

/** The error a promise rejects with (a test failure if it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.unreachable('expected a failure'),
    (err: unknown) => err,
  );
}

const client = (apiKey: string, headers: Record<string, string> = {}) => new OpenAI({ baseURL: `${base()}/v1`, apiKey, maxRetries: 0, defaultHeaders: headers });

test.before(async () => {
  stack = await startStack({
    env: { ADMIN_TOKEN: ADMIN, AUTH_JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters!!', TOKEN_QUOTA: '100000' },
    plan: (req) => (req.messages.at(-1)!.content === 'long' ? { text: TEXT, tokenDelayMs: 30 } : { text: TEXT }),
  });
});
test.after(async () => {
  await stack.close();
});

test('a completion, not streamed: the reply, its usage, the client\'s own context sent upstream', async () => {
  const { key } = await issue();
  const before = stack.model.requests.length;
  const completion = await client(key).chat.completions.create({
    model: 'test-model',
    messages: [
      { role: 'system', content: 'Answer in words.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'second question' },
    ],
  });
  assert.is(completion.choices[0]!.message.content, TEXT);
  assert.is(completion.choices[0]!.finish_reason, 'stop');
  assert.ok(completion.usage!.completion_tokens > 0);
  const sent = stack.model.requests[before]!.messages.map((m) => m.content);
  assert.equal(sent.slice(-4), ['Answer in words.', 'first question', 'first answer', 'second question']);
});

test('a streamed completion: chunks add up to the reply, then usage when asked for', async () => {
  const { key } = await issue();
  const stream = await client(key).chat.completions.create({
    model: 'test-model',
    messages: [{ role: 'user', content: 'stream it' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish: string | null = null;
  let usage: number | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage?.completion_tokens ?? usage;
  }
  assert.is(text, TEXT);
  assert.is(finish, 'stop');
  assert.ok(usage! > 0);
});

test('aborting a stream mid-reply closes the upstream request; its usage is still counted under the key', async () => {
  const { id, key } = await issue();
  const controller = new AbortController();
  const stream = await client(key).chat.completions.create(
    { model: 'test-model', messages: [{ role: 'user', content: 'long' }], stream: true },
    { signal: controller.signal },
  );
  // The SDK ends the iteration (or throws, depending on timing) once aborted.
  await (async () => {
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) controller.abort();
  })().catch(() => undefined);
  const req = stack.model.requests.at(-1)!;
  await req.closed;
  assert.ok(req.aborted, 'the upstream saw its connection closed');
  assert.not.ok(req.finished);
  // What was generated before the abort is still counted under the key.
  await eventually(async () => {
    const listed = (await (await admin('GET', '/admin/keys')).json()) as { keys: Array<{ id: string; usage: { requests: number } }> };
    return listed.keys.find((k) => k.id === id)?.usage.requests === 1;
  }, 'the cancelled exchange is counted');
});

test('a bad or revoked key gets 401; a key lists its usage', async () => {
  assert.instance(await failure(client('rk-not-a-key').chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] })), OpenAI.AuthenticationError);
  const { id, key } = await issue({ userId: 'bob', name: 'bob laptop' });
  await client(key).chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
  const listed = (await (await admin('GET', '/admin/keys')).json()) as { keys: Array<{ id: string; userId: string; usage: { requests: number; completionTokens: number } }> };
  const mine = listed.keys.find((k) => k.id === id)!;
  assert.is(mine.userId, 'bob');
  assert.is(mine.usage.requests, 1);
  assert.ok(mine.usage.completionTokens > 0);
  assert.not.ok(JSON.stringify(listed).includes(key), 'the secret is never listed');
  assert.is((await admin('DELETE', `/admin/keys/${id}`)).status, 200);
  assert.instance(await failure(client(key).chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] })), OpenAI.AuthenticationError);
  assert.is((await fetch(`${base()}/admin/keys`)).status, 401, 'the admin API wants the admin token');
});

test('GET /v1/models lists the models this server allows', async () => {
  const { key } = await issue();
  const list = await client(key).models.list();
  assert.ok(list.data.some((m) => m.id === 'test-model'));
});

test('bad bodies get OpenAI-shaped errors', async () => {
  const { key } = await issue();
  const post = (body: string) => fetch(`${base()}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
  for (const [body, status] of [
    ['{not json', 400],
    [JSON.stringify({ model: 'test-model', messages: 'hi' }), 400],
    [JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }), 400],
    [JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] }), 413],
  ] as const) {
    const res = await post(body);
    assert.is(res.status, status, body.slice(0, 40));
    const error = ((await res.json()) as { error: { type: string; message: string } }).error;
    assert.is(error.type, 'invalid_request_error');
    assert.ok(error.message.length > 0);
  }
});

test('a bound exchange goes into its conversation and streams live to its socket members', async () => {
  const { key } = await issue({ userId: 'carol', conversations: ['room-*'] });
  const { SignJWT } = await import('jose');
  const jwt = await new SignJWT({ sub: 'watcher' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode('a-jwt-secret-of-at-least-32-characters!!'));
  const watcher = await stack.connect({ hello: false });
  watcher.send({ type: 'hello', token: jwt });
  await watcher.next('welcome');
  watcher.send({ type: 'join', conversationId: 'room-1' });
  await watcher.next('joined');
  const completion = await client(key, { 'X-Conversation-Id': 'room-1' }).chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'asked over HTTP' }] });
  const message = await watcher.next('message');
  assert.is(message.message.text, 'asked over HTTP');
  assert.is(message.message.author.id, 'carol');
  const end = await watcher.next('reply.end');
  assert.is(replyText(watcher.frames, end.replyId), completion.choices[0]!.message.content!);
  const refused = await failure(client(key, { 'X-Conversation-Id': 'elsewhere' }).chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'no' }] }));
  assert.ok(refused instanceof OpenAI.PermissionDeniedError, String(refused));
});

test('over the token quota: 429 insufficient_quota', async () => {
  await stack.close();
  stack = await startStack({ env: { ADMIN_TOKEN: ADMIN, AUTH_JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters!!', TOKEN_QUOTA: '5' }, plan: () => ({ text: TEXT }) });
  const { key } = await issue({ userId: 'dave' });
  // The first reply crosses the quota and is stopped; the next is refused before it starts.
  for (const content of ['spend it', 'more']) {
    const err = await failure(client(key).chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content }] }));
    assert.ok(err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota', String(err));
  }
  await eventually(() => stack.relay.stats().usersWithReplies === 0, 'nothing left running');
});

test.run();
