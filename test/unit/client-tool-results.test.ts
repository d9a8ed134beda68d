// The client library's tool results, fed scripted frames over a fake socket:
// respond() sends a tool.result and settles on the server's answer to its ref;
// every accepted result lands on its reply and in history, once, whether it
// came live, replayed on resume, or in a snapshot; and the continuation the
// relay starts (its inReplyTo is a reply id, not a message id) is linked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrame, ToolCall, User } from '../../shared/protocol.js';
import { RelayClient, SendError, type Conversation, type Reply, type ToolResult } from '../../client/index.js';
import { FakeSocket, ME, ROOM } from '../fake-socket.js';

type Joined = Extract<ServerFrame, { type: 'joined' }>;

const RELAY: User = { id: 'relay', name: 'relay' };

const tick = () => new Promise((r) => setTimeout(r, 0));
const socket = () => FakeSocket.last();
let seq = 0;
const ev = {
  message: (replyId: string): ServerFrame => ({
    type: 'message',
    conversationId: ROOM,
    seq: ++seq,
    message: { id: `m${seq}`, role: 'user', author: ME, text: 'weather?', createdAt: 0 },
    replyId,
  }),
  start: (replyId: string, inReplyTo: string): ServerFrame => ({ type: 'reply.start', conversationId: ROOM, seq: ++seq, replyId, inReplyTo, model: 'm1' }),
  text: (replyId: string, text: string): ServerFrame => ({ type: 'reply.delta', conversationId: ROOM, seq: ++seq, replyId, text }),
  end: (replyId: string, finishReason: 'stop' | 'tool_calls', toolCalls?: ToolCall[]): ServerFrame => ({
    type: 'reply.end',
    conversationId: ROOM,
    seq: ++seq,
    replyId,
    finishReason,
    ...(toolCalls ? { toolCalls } : {}),
  }),
  result: (replyId: string, toolCallId: string, output: string, extra: { ref?: string; isError?: boolean; author?: User } = {}): ServerFrame => ({
    type: 'tool.result',
    conversationId: ROOM,
    seq: ++seq,
    replyId,
    toolCallId,
    output,
    isError: extra.isError ?? false,
    author: extra.author ?? ME,
    createdAt: 5,
    ...(extra.ref ? { ref: extra.ref } : {}),
  }),
  error: (ref: string, code: 'not_found' | 'forbidden'): ServerFrame => ({ type: 'error', ref, code, message: `${code} here`, conversationId: ROOM }),
};

const WEATHER: ToolCall = { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' };
const TIME: ToolCall = { id: 'call_2', name: 'get_time', arguments: '{}' };

let client: RelayClient;

async function open(joined: Partial<Joined> = {}): Promise<Conversation> {
  FakeSocket.joined = joined;
  client = new RelayClient({ url: 'ws://fake', WebSocket: FakeSocket, pingIntervalMs: 0, backoff: { initialMs: 1, maxMs: 2, jitter: 0 } });
  await client.connect();
  const room = client.conversation(ROOM);
  await tick();
  return room;
}

/** A reply r1 that asked for WEATHER and TIME and is waiting for their results. */
async function askedForTools(): Promise<{ room: Conversation; reply: Reply; results: ToolResult[] }> {
  const room = await open();
  socket().push(ev.message('r1'));
  const reply = room.reply('r1');
  const results: ToolResult[] = [];
  reply.on('toolResult', (r) => results.push(r));
  socket().push(ev.start('r1', 'm1'));
  socket().push(ev.end('r1', 'tool_calls', [WEATHER, TIME]));
  await reply.result;
  return { room, reply, results };
}

/** The ref of the last tool.result sent, after the client had a moment to send it. */
async function lastResultRef(): Promise<string> {
  await tick();
  const ref = socket().results().at(-1)?.ref;
  if (!ref) throw new Error('no tool.result with a ref was sent');
  return ref;
}

test.before.each(() => {
  FakeSocket.all = [];
  FakeSocket.joined = {};
  seq = 0;
});
test.after.each(() => client.close());

test('send forwards the tools it offers; an invalid list is refused before it goes out', async () => {
  const room = await open();
  const tools = [{ name: 'get_weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  // Never acknowledged here: closing the client rejects it.
  room.send('weather?', { tools }).catch(() => {});
  await tick();
  const sent = socket().sent.find((f) => f.type === 'send');
  assert.equal(sent?.type === 'send' ? sent.tools : undefined, tools);

  const twice = [tools[0]!, tools[0]!];
  const err = await room.send('again', { tools: twice }).catch((e: unknown) => e);
  assert.instance(err, SendError);
  assert.is(err instanceof SendError && err.code, 'bad_frame');
  assert.match(String(err), /unique/);
  assert.is(socket().sent.filter((f) => f.type === 'send').length, 1, 'nothing went out');
});

test('respond sends the frame and resolves on the server event that carries its ref', async () => {
  const { room, reply, results } = await askedForTools();
  assert.equal(reply.pendingToolCalls, [WEATHER, TIME]);
  const seen: string[] = [];
  room.on('tool.result', (e) => seen.push(e.toolCallId));

  const answered = room.respond('r1', 'call_1', '18 C, cloudy');
  const ref = await lastResultRef();
  assert.equal(socket().results(), [{ type: 'tool.result', ref, conversationId: ROOM, replyId: 'r1', toolCallId: 'call_1', output: '18 C, cloudy' }]);
  let settled = false;
  void answered.then(() => (settled = true));
  // Another member's result (no ref) is not the answer to ours.
  socket().push(ev.result('r1', 'call_2', 'noon', { author: RELAY }));
  await tick();
  assert.not.ok(settled, 'still waiting for its own event');
  socket().push(ev.result('r1', 'call_1', '18 C, cloudy', { ref }));

  const result = await answered;
  assert.equal(result, { replyId: 'r1', toolCallId: 'call_1', output: '18 C, cloudy', isError: false, author: ME, createdAt: 5 });
  assert.equal(seen, ['call_2', 'call_1']);
  assert.equal(results.map((r) => r.toolCallId), ['call_2', 'call_1']);
  assert.equal([...reply.toolResults.keys()].sort(), ['call_1', 'call_2']);
  assert.equal(reply.toolResults.get('call_2')?.author, RELAY);
  assert.equal(reply.pendingToolCalls, []);
  const entry = room.history.find((m) => m.role === 'tool' && m.toolCallId === 'call_1');
  assert.equal(entry, { id: 'tool:r1:call_1', role: 'tool', text: '18 C, cloudy', createdAt: 5, author: ME, replyId: 'r1', toolCallId: 'call_1', isError: false, siblings: { index: 0, count: 1 } });
});

test('isError goes out and comes back', async () => {
  const { room, reply } = await askedForTools();
  const answered = room.respond('r1', 'call_1', 'the weather service is down', { isError: true });
  const ref = await lastResultRef();
  assert.is(socket().results()[0]?.isError, true);
  socket().push(ev.result('r1', 'call_1', 'the weather service is down', { ref, isError: true }));
  assert.is((await answered).isError, true);
  assert.is(reply.toolResults.get('call_1')?.isError, true);
  assert.is(room.history.at(-1)?.isError, true);
});

test('respond rejects with the code of the error answering its ref', async () => {
  const { room, reply } = await askedForTools();
  const errors: string[] = [];
  room.on('error', (e) => errors.push(e.code));
  for (const code of ['not_found', 'forbidden'] as const) {
    const answered = room.respond('r1', 'call_9', 'x').catch((e: unknown) => e);
    socket().push(ev.error(await lastResultRef(), code));
    const err = await answered;
    assert.instance(err, SendError);
    assert.is(err instanceof SendError && err.code, code);
  }
  assert.equal(errors, [], 'an error a promise reports is not an error event as well');
  assert.is(reply.toolResults.size, 0);
});

test('a continuation answers a reply: it is linked, streams, and is the next assistant entry', async () => {
  const { room, reply } = await askedForTools();
  const continued: Reply[] = [];
  reply.on('continuation', (r) => continued.push(r));
  socket().push(ev.result('r1', 'call_1', '18 C', { author: RELAY }));
  socket().push(ev.result('r1', 'call_2', '12:00', { author: RELAY }));
  socket().push(ev.start('r2', 'r1'));
  const next = reply.continuation;
  if (!next) throw new Error('the continuation is not linked');
  assert.is(next.id, 'r2');
  assert.is(next.inReplyTo, 'r1');
  assert.equal(continued, [next]);
  assert.is(room.streaming, next);
  socket().push(ev.text('r2', 'It is 18 C in Paris.'));
  socket().push(ev.end('r2', 'stop'));
  const end = await next.result;
  assert.equal([end.finishReason, end.text], ['stop', 'It is 18 C in Paris.']);
  assert.is(next.continuation, undefined);
  assert.equal(
    room.history.map((m) => [m.role, m.id]),
    [
      ['user', 'm1'],
      ['assistant', 'r1'],
      ['tool', 'tool:r1:call_1'],
      ['tool', 'tool:r1:call_2'],
      ['assistant', 'r2'],
    ],
  );
  assert.is(room.history.at(-1)?.text, 'It is 18 C in Paris.');
});

test('a result replayed on resume counts once, and a respond cut off by the drop resolves with it', async () => {
  const { room, results } = await askedForTools();
  const answered = room.respond('r1', 'call_1', '18 C');
  const firstRef = await lastResultRef();
  // The server accepted it, but the socket died before the event got here.
  FakeSocket.joined = { seq: seq + 1 };
  socket().close(1006);
  await new Promise((r) => setTimeout(r, 20));
  assert.is(FakeSocket.all.length, 2, 'on a new socket');
  assert.ok(socket().sent.some((f) => f.type === 'join' && f.since !== undefined), 'a resume, not a first join');
  const again = socket().results();
  assert.is(again.length, 1, 'sent again once back');
  assert.is.not(again[0]?.ref, firstRef);

  // The join replays the event, then the repeat is refused as already answered.
  const replayed = ev.result('r1', 'call_1', '18 C', { ref: firstRef });
  socket().push(replayed);
  socket().push(replayed);
  socket().push(ev.error(again[0]!.ref!, 'not_found'));
  assert.is((await answered).output, '18 C');
  assert.is(results.length, 1, 'one event, however often it arrived');
  assert.is(room.history.filter((m) => m.role === 'tool').length, 1);
});

test('results in a snapshot attach to held replies and to handles taken later', async () => {
  const { room, reply, results } = await askedForTools();
  const history: Joined['history'] = [
    { id: 'm1', role: 'user', author: ME, text: 'weather?', createdAt: 0 },
    { id: 'r1', role: 'assistant', text: '', createdAt: 1, finishReason: 'tool_calls', toolCalls: [WEATHER, TIME] },
    { id: 'tool:r1:call_1', role: 'tool', author: RELAY, text: '18 C', createdAt: 2, replyId: 'r1', toolCallId: 'call_1', isError: false },
    { id: 'tool:r1:call_2', role: 'tool', author: ME, text: 'no clock', createdAt: 3, replyId: 'r1', toolCallId: 'call_2', isError: true },
    { id: 'r2', role: 'assistant', text: 'It is 18 C.', createdAt: 4, finishReason: 'stop' },
  ];
  // The server lost the log while we were away: the join answers with a snapshot.
  FakeSocket.joined = { seq: 40, reset: true, history };
  socket().close(1006);
  await new Promise<void>((resolve) => room.once('joined', () => resolve()));
  assert.equal(results.map((r) => [r.toolCallId, r.output, r.isError]), [
    ['call_1', '18 C', false],
    ['call_2', 'no clock', true],
  ]);
  assert.equal(reply.pendingToolCalls, []);
  assert.is(room.history.filter((m) => m.role === 'tool').length, 2);

  // A respond after the fact is refused by the server, as the call is answered.
  const late = room.respond('r1', 'call_1', 'something else').catch((e: unknown) => e);
  socket().push(ev.error(await lastResultRef(), 'not_found'));
  const err = await late;
  assert.is(err instanceof SendError && err.code, 'not_found', 'a different output is not taken for ours');
});

test('a first join seeds the results of replies taken from history', async () => {
  const room = await open({
    seq: 9,
    history: [
      { id: 'r7', role: 'assistant', text: '', createdAt: 1, finishReason: 'tool_calls', toolCalls: [WEATHER] },
      { id: 'tool:r7:call_1', role: 'tool', author: RELAY, text: '18 C', createdAt: 2, replyId: 'r7', toolCallId: 'call_1' },
    ],
  });
  const result = room.reply('r7').toolResults.get('call_1');
  assert.equal(result, { replyId: 'r7', toolCallId: 'call_1', output: '18 C', isError: false, author: RELAY, createdAt: 2 });
  assert.ok(Object.isFrozen(result), 'handed out as is, so it cannot be changed');
});

test.run();
