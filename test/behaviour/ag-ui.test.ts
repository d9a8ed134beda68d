// AG-UI on `POST /ag-ui`, driven by the real `@ag-ui/client` HttpAgent as an
// AG-UI front end would: a plain turn, a client-tool turn over two runs,
// reasoning, an abort that reaches the upstream, bad input and origins — with
// a native `/ws` member of the thread watching each run live.
import { HttpAgent, type BaseEvent, type Message } from '@ag-ui/client';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan, RecordedRequest } from '../../demo/localmodel.js';
import { replyText, startStack, type Stack, type TestClient } from '../helpers.js';

const SECRET = 'a-jwt-secret-of-at-least-32-characters!!';
const ORIGIN = 'https://app.example.com';
const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

let plan: (req: RecordedRequest) => FaultPlan | undefined = () => undefined;
let stack: Stack;
const url = () => `http://127.0.0.1:${stack.relay.port}/ag-ui`;

test.before(async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET, ALLOWED_ORIGINS: ORIGIN }, plan: (req) => plan(req) });
});
test.after(async () => {
  await stack.close();
});
test.before.each(() => {
  plan = () => undefined;
});

const token = (sub: string, conversations = ['*']) =>
  new SignJWT({ sub, name: sub, conversations }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

/** A member of the thread on `/ws`, joined before the run starts. */
async function watch(threadId: string): Promise<TestClient> {
  const c = await stack.connect({ hello: false });
  c.send({ type: 'hello', token: await token('watcher') });
  await c.next('welcome');
  c.send({ type: 'join', conversationId: threadId });
  await c.next('joined');
  return c;
}

async function agent(threadId: string, sub = 'alice'): Promise<{ agent: HttpAgent; events: BaseEvent[] }> {
  const a = new HttpAgent({ url: url(), threadId, headers: { authorization: `Bearer ${await token(sub)}` } });
  const events: BaseEvent[] = [];
  a.subscribe({ onEvent: ({ event }) => void events.push(event) });
  return { agent: a, events };
}

const user = (content: string): Message => ({ id: randomUUID(), role: 'user', content });
const types = (events: BaseEvent[]) => events.map((e) => e.type);

test('a plain turn: the reply as text message events, watched live by a /ws member of the thread', async () => {
  plan = () => ({ text: 'Hello from the relay, word by word.' });
  const threadId = `agui-${randomUUID()}`;
  const watcher = await watch(threadId);
  const { agent: a, events } = await agent(threadId);
  a.addMessage(user('say hello'));
  const { newMessages } = await a.runAgent();

  const reply = newMessages.find((m) => m.role === 'assistant');
  assert.is(reply?.content, 'Hello from the relay, word by word.');
  assert.is(types(events)[0], 'RUN_STARTED');
  assert.is(types(events).at(-1), 'RUN_FINISHED');
  assert.ok(types(events).filter((t) => t === 'TEXT_MESSAGE_CONTENT').length > 1, 'the reply streams in pieces');
  const finished = events.at(-1) as BaseEvent & { usage?: Array<{ outputTokens: number }> };
  assert.ok(finished.usage![0]!.outputTokens > 0, 'the run reports its usage');

  // The watcher saw alice's message and the same reply, whose id is the AG-UI message id.
  const message = await watcher.waitFor('message');
  assert.is(message.message.text, 'say hello');
  assert.is(message.message.author?.id, 'alice');
  const end = await watcher.waitFor('reply.end');
  assert.is(end.replyId, reply!.id);
  assert.is(replyText(watcher.frames, end.replyId), reply!.content);

  // The next run answers from the thread the relay keeps: the model sees the first exchange.
  a.addMessage(user('and again'));
  await a.runAgent();
  const sent = stack.model.requests.at(-1)!.messages.map((m) => m.content);
  assert.equal(sent.slice(-3), ['say hello', 'Hello from the relay, word by word.', 'and again']);
});

test('a client-tool turn: the call ends the first run, the tool message starts the second, whose reply is the continuation', async () => {
  const threadId = `agui-${randomUUID()}`;
  const watcher = await watch(threadId);
  const { agent: a, events } = await agent(threadId);
  a.addMessage(user('use get_weather for Paris'));
  const first = await a.runAgent({ tools: [WEATHER] });

  const call = first.newMessages.find((m) => m.role === 'assistant')?.toolCalls?.[0];
  assert.is(call?.function.name, 'get_weather');
  assert.equal(JSON.parse(call!.function.arguments), { city: 'use get_weather for Paris' });
  assert.equal(types(events).filter((t) => t.startsWith('TOOL_CALL')).slice(0, 1), ['TOOL_CALL_START']);
  assert.is(types(events).filter((t) => t.startsWith('TOOL_CALL')).at(-1), 'TOOL_CALL_END');
  const finished = events.at(-1) as BaseEvent & { outcome?: { type: string; pendingToolCallIds?: string[] } };
  assert.equal(finished.outcome, { type: 'success', pendingToolCallIds: [call!.id] });

  a.addMessage({ id: randomUUID(), role: 'tool', toolCallId: call!.id, content: 'sunny, 21 °C' });
  const second = await a.runAgent({ tools: [WEATHER] });
  const answer = second.newMessages.find((m) => m.role === 'assistant');
  assert.is(answer?.content, 'The tools answered: get_weather: sunny, 21 °C.');

  // The watcher saw the call, alice's result and the continuation, as any member would.
  const result = await watcher.waitFor('tool.result');
  assert.is(result.output, 'sunny, 21 °C');
  assert.is(result.author.id, 'alice');
  const start = await watcher.waitFor('reply.start', (f) => f.inReplyTo === result.replyId);
  assert.is(start.replyId, answer!.id);
});

test('two calls answered over two runs: each run sends every result so far, the second one continues the reply', async () => {
  const CLOCK = { name: 'get_time', description: 'The time', parameters: { type: 'object', properties: {} } };
  const { agent: a, events } = await agent(`agui-${randomUUID()}`);
  a.addMessage(user('use get_weather and get_time for Paris'));
  const first = await a.runAgent({ tools: [WEATHER, CLOCK] });
  const calls = first.newMessages.find((m) => m.role === 'assistant')?.toolCalls ?? [];
  assert.equal(calls.map((c) => c.function.name), ['get_weather', 'get_time']);

  a.addMessage({ id: randomUUID(), role: 'tool', toolCallId: calls[0]!.id, content: 'rain' });
  const second = await a.runAgent({ tools: [WEATHER, CLOCK] });
  assert.equal(second.newMessages, [], 'nothing to say yet');
  const waiting = events.at(-1) as BaseEvent & { outcome?: { pendingToolCallIds?: string[] } };
  assert.equal(waiting.outcome?.pendingToolCallIds, [calls[1]!.id]);

  // The front end sends the first result again with the second, as AG-UI clients do.
  a.addMessage({ id: randomUUID(), role: 'tool', toolCallId: calls[1]!.id, content: '14:05' });
  const third = await a.runAgent({ tools: [WEATHER, CLOCK] });
  assert.is(third.newMessages.find((m) => m.role === 'assistant')?.content, 'The tools answered: get_weather: rain; get_time: 14:05.');
});

test('reasoning streams as a reasoning message beside the text', async () => {
  plan = () => ({ reasoning: 'Think first, then answer.', text: 'Answered.' });
  const { agent: a, events } = await agent(`agui-${randomUUID()}`);
  a.addMessage(user('think about it'));
  const { newMessages } = await a.runAgent();
  assert.equal(types(events).slice(0, 3), ['RUN_STARTED', 'REASONING_START', 'REASONING_MESSAGE_START']);
  const reasoning = events.filter((e) => e.type === 'REASONING_MESSAGE_CONTENT').map((e) => (e as BaseEvent & { delta: string }).delta).join('');
  assert.is(reasoning, 'Think first, then answer.');
  assert.is(newMessages.find((m) => m.role === 'assistant')?.content, 'Answered.');
});

test('aborting a run cancels its reply for everyone and closes the upstream request', async () => {
  plan = () => ({ text: Array.from({ length: 200 }, (_, i) => `w${i}`).join(' '), tokenDelayMs: 20 });
  const threadId = `agui-${randomUUID()}`;
  const watcher = await watch(threadId);
  const { agent: a } = await agent(threadId);
  a.addMessage(user('a long one'));
  const running = a.runAgent({}, { onTextMessageContentEvent: () => a.abortRun() }).catch(() => undefined);
  const end = await watcher.waitFor('reply.end');
  assert.is(end.finishReason, 'cancelled');
  const req = stack.model.requests.at(-1)!;
  await req.closed;
  assert.ok(req.aborted, 'the upstream saw its connection closed');
  assert.not.ok(req.finished);
  await running;
});

test('an upstream failure ends the run with RUN_ERROR and the protocol\'s code', async () => {
  plan = () => ({ httpStatus: 500 });
  const { agent: a, events } = await agent(`agui-${randomUUID()}`);
  a.addMessage(user('fail please'));
  await a.runAgent().catch(() => undefined);
  const error = events.at(-1) as BaseEvent & { code?: string; message?: string };
  assert.is(error.type, 'RUN_ERROR');
  assert.is(error.code, 'upstream_error');
});

async function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await token('bob', ['bob-*'])}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

test('bad input gets an HTTP error in the relay\'s shape, and the server goes on', async () => {
  const input = (messages: unknown[], threadId = 'bob-1') => ({ threadId, runId: 'r1', messages, state: {}, tools: [], context: [], forwardedProps: {} });
  const cases: Array<[unknown, number, string]> = [
    ['{not json', 400, 'bad_frame'],
    [input([]), 400, 'bad_frame'],
    [input([{ id: 'a1', role: 'assistant', content: 'hi' }]), 400, 'bad_frame'],
    [input([{ id: 't1', role: 'tool', toolCallId: 'c1', content: 'x' }]), 400, 'bad_frame'],
    [input([{ id: 'u1', role: 'user', content: [{ type: 'binary', mimeType: 'image/png', data: 'AAAA' }] }]), 400, 'bad_frame'],
    [input([{ id: 'u1', role: 'user', content: 'hi' }], 'not a thread id!'), 400, 'bad_frame'],
    [input([{ id: 'u1', role: 'user', content: 'hi' }], 'alice-1'), 403, 'forbidden'],
  ];
  for (const [body, status, code] of cases) {
    const res = await post(body);
    assert.is(res.status, status, JSON.stringify(body).slice(0, 80));
    assert.is(((await res.json()) as { error: { code: string } }).error.code, code);
  }
  const noToken = await fetch(url(), { method: 'POST', body: JSON.stringify(input([{ id: 'u1', role: 'user', content: 'hi' }])) });
  assert.is(noToken.status, 401);
  // A valid run still works.
  const ok = await post(input([{ id: 'u1', role: 'user', content: 'hi' }]));
  assert.is(ok.status, 200);
  assert.match(await ok.text(), /"type":"RUN_FINISHED"/);
});

test('origins: an allowed one gets CORS headers and a preflight; another is refused', async () => {
  const preflight = await fetch(url(), { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
  assert.is(preflight.status, 204);
  assert.is(preflight.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
  const run = await post({ threadId: 'bob-2', runId: 'r', messages: [{ id: 'u', role: 'user', content: 'hi' }] }, { origin: ORIGIN });
  assert.is(run.headers.get('access-control-allow-origin'), ORIGIN);
  await run.text();
  const before = stack.model.requests.length;
  const other = await post({ threadId: 'bob-3', runId: 'r', messages: [{ id: 'u', role: 'user', content: 'hi' }] }, { origin: 'https://evil.example' });
  assert.is(other.status, 403);
  assert.is(other.headers.get('access-control-allow-origin'), null);
  assert.is(stack.model.requests.length, before, 'nothing ran for the refused origin');
});

test.run();
