// The `ai` SDK's own WebSocketChatTransport (as `useChat` runs it) against
// `/ai-sdk`: replies, resume by a new transport, abort, a chat shared with a
// native `/ws` member, and bad frames.
import { WebSocketChatTransport, type UIMessage } from 'ai';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { NodeWebSocket, textOf } from '../ai-sdk.js';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

const TEXT = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
let stack: Stack;
const transports: WebSocketChatTransport<UIMessage>[] = [];

test.before(async () => {
  stack = await startStack({ plan: () => ({ text: TEXT, tokenDelayMs: 15 }) });
});
test.after(async () => {
  for (const t of transports) t.close();
  await stack.close();
});

function transport(): WebSocketChatTransport<UIMessage> {
  const t = new WebSocketChatTransport<UIMessage>({ url: stack.url.replace(/\/ws$/, '/ai-sdk'), webSocket: NodeWebSocket });
  transports.push(t);
  return t;
}

const ask = (t: WebSocketChatTransport<UIMessage>, chatId: string, text: string, abortSignal?: AbortSignal) =>
  t.sendMessages({ chatId, trigger: 'submit-message', messageId: undefined, abortSignal, messages: [{ id: `u-${text}`, role: 'user', parts: [{ type: 'text', text }] }] });


test('a reply read with readUIMessageStream is the model\'s text', async () => {
  assert.is(await textOf(await ask(transport(), 'chat-1', 'hello')), TEXT);
});

test('a transport closed mid-reply: a new one resumes and gets the whole reply, every chunk once', async () => {
  const first = transport();
  const stream = await ask(first, 'chat-2', 'go on');
  const reader = stream.getReader();
  await reader.read();
  first.close();
  await eventually(() => stack.model.requests.at(-1)!.tokensSent > 2, 'the reply goes on');
  const resumed = await transport().reconnectToStream({ chatId: 'chat-2' });
  assert.ok(resumed, 'a reply is active');
  assert.is(await textOf(resumed), TEXT);
});

test('nothing streaming: resume answers no-active', async () => {
  await textOf(await ask(transport(), 'chat-3', 'short'));
  assert.is(await transport().reconnectToStream({ chatId: 'chat-3' }), null);
});

test('abort stops the reply: the upstream sees its connection close', async () => {
  const controller = new AbortController();
  const stream = await ask(transport(), 'chat-4', 'stop me', controller.signal);
  const reader = stream.getReader();
  await reader.read();
  const request = () => stack.model.requests.find((r) => r.messages.at(-1)?.content === 'stop me');
  await eventually(() => (request()?.tokensSent ?? 0) > 0, 'the reply streams');
  controller.abort();
  const req = request()!;
  await req.closed;
  assert.ok(req.aborted);
});

test('two transports and a native /ws member on one chat see the same reply', async () => {
  const member = await stack.connect();
  member.send({ type: 'join', conversationId: 'chat-5' });
  await member.next('joined');
  const asking = ask(transport(), 'chat-5', 'for everyone');
  await member.next('reply.start');
  const watching = await transport().reconnectToStream({ chatId: 'chat-5' });
  assert.ok(watching);
  const [a, b] = await Promise.all([asking.then(textOf), textOf(watching)]);
  const end = await member.next('reply.end');
  assert.is(a, TEXT);
  assert.is(b, TEXT);
  assert.is(replyText(member.frames, end.replyId), TEXT);
});

test('bad frames: a close or an error with the requestId; the socket and the process go on', async () => {
  const url = stack.url.replace(/\/ws$/, '/ai-sdk');
  const open = async () => {
    const ws = new WebSocket(url);
    const frames: Array<{ type: string; requestId?: string; errorText?: string }> = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise((r) => ws.once('open', r));
    return { ws, frames, closed };
  };
  const notJson = await open();
  notJson.ws.send('{nope');
  assert.is(await notJson.closed, 1008);
  const noRequestId = await open();
  noRequestId.ws.send(JSON.stringify({ type: 'send' }));
  assert.is(await noRequestId.closed, 1008);
  const oversize = await open();
  oversize.ws.send(JSON.stringify({ type: 'abort', requestId: 'x'.repeat(70_000) }));
  assert.is(await oversize.closed, 1009);

  const c = await open();
  c.ws.send(JSON.stringify({ type: 'send', requestId: 'r1', id: 'bad id!', trigger: 'submit-message', messages: [], headers: {}, body: {} }));
  c.ws.send(JSON.stringify({ type: 'resume', requestId: 'r2', id: 'chat-6', lastSequence: -1, headers: {}, body: {} }));
  c.ws.send(JSON.stringify({ type: 'send', requestId: 'r3', id: 'chat-6', trigger: 'submit-message', messages: [{ id: 'a', role: 'assistant', parts: [] }], headers: {}, body: {} }));
  await eventually(() => c.frames.length >= 3, 'three answers');
  assert.equal(
    c.frames.map((f) => [f.type, f.requestId]),
    [
      ['error', 'r1'],
      ['error', 'r2'],
      ['error', 'r3'],
    ],
  );
  assert.ok(c.frames.every((f) => (f.errorText ?? '').length > 0));
  // The same socket still chats.
  c.ws.send(JSON.stringify({ type: 'send', requestId: 'r4', id: 'chat-6', trigger: 'submit-message', messages: [{ id: 'u', role: 'user', parts: [{ type: 'text', text: 'fine' }] }], headers: {}, body: {} }));
  await eventually(() => c.frames.some((f) => f.type === 'end' && f.requestId === 'r4'), 'the reply ends');
  c.ws.close();
});

test("a chat the token does not allow is refused with an error; a bad token never gets a socket", async () => {
  await stack.close();
  const secret = 'a-jwt-secret-of-at-least-32-characters!!';
  stack = await startStack({ env: { AUTH_JWT_SECRET: secret }, plan: () => ({ text: TEXT }) });
  const { SignJWT } = await import('jose');
  const jwt = await new SignJWT({ sub: 'eve', conversations: ['eve-*'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(secret));
  const url = stack.url.replace(/\/ws$/, '/ai-sdk');
  const own = new WebSocketChatTransport<UIMessage>({ url, params: { token: jwt }, webSocket: NodeWebSocket });
  transports.push(own);
  assert.is(await textOf(await ask(own, 'eve-1', 'mine')), TEXT);
  const error = await ask(own, 'alice-1', 'not mine').then(
    (stream) => stream.getReader().read(),
    (err: unknown) => err,
  ).catch((err: unknown) => err);
  assert.instance(error, Error);
  assert.match(String(error), /does not allow/);
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${url}?token=forged`);
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => resolve(101));
  });
  assert.is(refused, 401);
});

test('a transport socket that stops answering pings is terminated and released', async () => {
  await stack.close();
  stack = await startStack({ env: { PING_INTERVAL_MS: '40' } });
  // autoPong: false makes this client deaf to pings, like a peer behind a dead NAT mapping.
  const ws = new WebSocket(stack.url.replace(/\/ws$/, '/ai-sdk'), { autoPong: false });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  assert.is(await closed, 1006, 'terminated without a close frame');
  const res = await fetch(`http://127.0.0.1:${stack.relay.port}/healthz`);
  assert.is(res.status, 200);
});

test.run();
