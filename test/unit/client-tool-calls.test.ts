// The client library's tool calls, fed scripted frames over a fake socket: the
// calls grow piece by piece, the end's list replaces them, and a snapshot (late
// join, or a resume the server could not cover) seeds them without repeats.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrame, ToolCall } from '../../shared/protocol.js';
import { RelayClient, type ToolCallUpdate } from '../../client/index.js';
import { growToolCall } from '../../client/tool-calls.js';
import { FakeSocket, ROOM } from '../fake-socket.js';

type Joined = Extract<ServerFrame, { type: 'joined' }>;

const tick = () => new Promise((r) => setTimeout(r, 0));
const socket = () => FakeSocket.last();
let seq = 0;
const ev = {
  message: (replyId: string): ServerFrame => ({
    type: 'message',
    conversationId: ROOM,
    seq: ++seq,
    message: { id: `m${seq}`, role: 'user', author: { id: 'u', name: 'U' }, text: 'weather?', createdAt: 0 },
    replyId,
  }),
  start: (replyId: string): ServerFrame => ({ type: 'reply.start', conversationId: ROOM, seq: ++seq, replyId, inReplyTo: 'm', model: 'm1' }),
  delta: (replyId: string, piece: Omit<Extract<ServerFrame, { type: 'reply.delta' }>, 'type' | 'conversationId' | 'seq' | 'replyId'>): ServerFrame => ({
    type: 'reply.delta',
    conversationId: ROOM,
    seq: ++seq,
    replyId,
    ...piece,
  }),
  end: (replyId: string, finishReason: 'tool_calls' | 'cancelled', toolCalls?: ToolCall[]): ServerFrame => ({
    type: 'reply.end',
    conversationId: ROOM,
    seq: ++seq,
    replyId,
    finishReason,
    ...(toolCalls ? { toolCalls } : {}),
  }),
};

const WEATHER: ToolCall = { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' };
const TIME: ToolCall = { id: 'call_2', name: 'get_time', arguments: '{}' };

let client: RelayClient;

async function open(joined: Partial<Joined> = {}) {
  FakeSocket.joined = joined;
  client = new RelayClient({ url: 'ws://fake', WebSocket: FakeSocket, pingIntervalMs: 0, backoff: { initialMs: 1, maxMs: 2, jitter: 0 } });
  await client.connect();
  const room = client.conversation(ROOM);
  await tick();
  return room;
}

test.before.each(() => {
  FakeSocket.all = [];
  FakeSocket.models = undefined;
  seq = 0;
});
test.after.each(() => client.close());

test('pieces grow the calls, each growth is an event, and the end list replaces them', async () => {
  const room = await open();
  socket().push(ev.message('r1'));
  const reply = room.reply('r1');
  const updates: ToolCallUpdate[] = [];
  reply.on('toolCall', (u) => updates.push(u));
  socket().push(ev.start('r1'));
  socket().push(ev.delta('r1', { toolCall: { index: 0, id: 'call_1', name: 'get_weather', arguments: '' } }));
  assert.equal(reply.toolCalls, [{ id: 'call_1', name: 'get_weather', arguments: '' }]);
  socket().push(ev.delta('r1', { toolCall: { index: 0, arguments: '{"city"' } }));
  const early = reply.toolCalls;
  // A delta may carry text and a piece of a call at once.
  socket().push(ev.delta('r1', { text: 'Checking.', toolCall: { index: 0, arguments: ':"Paris"}' } }));
  socket().push(ev.delta('r1', { toolCall: { index: 1, id: 'call_2', name: 'get_time', arguments: '{}' } }));

  assert.equal(early, [{ id: 'call_1', name: 'get_weather', arguments: '{"city"' }], 'a list handed out earlier does not change');
  assert.equal(reply.toolCalls, [WEATHER, TIME]);
  assert.is(reply.text, 'Checking.');
  assert.equal(
    updates.map((u) => [u.index, u.call.arguments]),
    [
      [0, ''],
      [0, '{"city"'],
      [0, '{"city":"Paris"}'],
      [1, '{}'],
    ],
  );
  assert.ok(updates.every((u) => u.replyId === 'r1'));
  const entry = room.history.find((m) => m.id === 'r1');
  assert.equal(entry?.toolCalls, [WEATHER, TIME], 'the streaming history entry has them too');
  assert.is(entry?.model, 'm1');

  // The final list is the truth even where it differs from the pieces.
  const final = [WEATHER, { ...TIME, arguments: '{"tz":"UTC"}' }];
  socket().push(ev.end('r1', 'tool_calls', final));
  const result = await reply.result;
  assert.equal(result.toolCalls, final);
  assert.equal(reply.toolCalls, final);
  assert.equal(room.history.find((m) => m.id === 'r1')?.toolCalls, final);
  assert.equal(updates.at(-1), { replyId: 'r1', index: 1, call: final[1] }, 'the change at the end is an event too');
  assert.is(updates.length, 5, 'no event for a call the end left as it was');
});

test('a cancelled reply keeps no tool calls, as the server keeps none', async () => {
  const room = await open();
  socket().push(ev.message('r1'));
  socket().push(ev.start('r1'));
  socket().push(ev.delta('r1', { toolCall: { index: 0, id: 'call_1', name: 'get_weather', arguments: '{"ci' } }));
  const reply = room.reply('r1');
  assert.is(reply.toolCalls.length, 1);
  socket().push(ev.end('r1', 'cancelled'));
  assert.equal((await reply.result).toolCalls, undefined);
  assert.equal(reply.toolCalls, []);
  assert.is(room.history.find((m) => m.id === 'r1')?.toolCalls, undefined);
});

test('a late joiner is seeded from joined.streaming and goes on from there', async () => {
  seq = 7;
  const room = await open({
    seq: 7,
    streaming: { replyId: 'r1', text: 'Let me', seq: 7, model: 'm2', reasoning: 'The user wants', refusal: 'no', toolCalls: [WEATHER, { ...TIME, arguments: '{"t' }] },
  });
  const reply = room.streaming;
  if (!reply) throw new Error('the reply in flight has no handle');
  assert.is(reply.model, 'm2');
  assert.is(reply.text, 'Let me');
  assert.is(reply.reasoning, 'The user wants');
  assert.is(reply.refusal, 'no');
  assert.equal(reply.toolCalls, [WEATHER, { ...TIME, arguments: '{"t' }]);
  const entry = room.history.at(-1);
  assert.equal(
    { reasoning: entry?.reasoning, refusal: entry?.refusal, toolCalls: entry?.toolCalls },
    { reasoning: 'The user wants', refusal: 'no', toolCalls: [WEATHER, { ...TIME, arguments: '{"t' }] },
  );

  const updates: ToolCallUpdate[] = [];
  reply.on('toolCall', (u) => updates.push(u));
  socket().push(ev.delta('r1', { toolCall: { index: 1, arguments: 'z":"UTC"}' } }));
  assert.equal(reply.toolCalls[1], { ...TIME, arguments: '{"tz":"UTC"}' });
  assert.equal(room.history.at(-1)?.toolCalls?.[1], { ...TIME, arguments: '{"tz":"UTC"}' });
  assert.is(updates.length, 1);
});

test('a snapshot resume catches the held reply up: only what changed is an event', async () => {
  const room = await open();
  socket().push(ev.message('r1'));
  socket().push(ev.start('r1'));
  socket().push(ev.delta('r1', { toolCall: { index: 0, id: 'call_1', name: 'get_weather', arguments: '{"city"' } }));
  const reply = room.reply('r1');
  const updates: ToolCallUpdate[] = [];
  reply.on('toolCall', (u) => updates.push(u));

  // The socket dies; the server has lost the log meanwhile, so the join answers with a snapshot.
  FakeSocket.joined = { seq: 20, reset: true, streaming: { replyId: 'r1', text: '', seq: 20, toolCalls: [WEATHER, { ...TIME, arguments: '{' }] } };
  socket().close(1006);
  await new Promise<void>((resolve) => room.once('joined', () => resolve()));
  assert.is(FakeSocket.all.length, 2, 'on a new socket');
  assert.ok(socket().sent.some((f) => f.type === 'join' && f.since !== undefined), 'a resume, not a first join');
  assert.equal(reply.toolCalls, [WEATHER, { ...TIME, arguments: '{' }]);
  assert.equal(
    updates.map((u) => [u.index, u.call.arguments]),
    [
      [0, '{"city":"Paris"}'],
      [1, '{'],
    ],
  );
  seq = 20;
  socket().push(ev.delta('r1', { toolCall: { index: 1, arguments: '}' } }));
  socket().push(ev.end('r1', 'tool_calls', [WEATHER, TIME]));
  assert.equal((await reply.result).toolCalls, [WEATHER, TIME]);
  assert.is(updates.length, 3, 'the end list matched what the pieces built');
});

test('client.models lists what the welcome offered', async () => {
  FakeSocket.models = [{ id: 'small', default: true }, { id: 'large' }];
  await open();
  assert.equal(client.models, [{ id: 'small', default: true }, { id: 'large' }]);
  client.close();
  FakeSocket.models = undefined;
  await open();
  assert.equal(client.models, [], 'a server that does not say lists none');
});

test('a piece for a later index begins that call; id and name come once', () => {
  const calls: ToolCall[] = [];
  assert.equal(growToolCall(calls, { index: 1, id: 'b', name: 'g', arguments: '{' }), { id: 'b', name: 'g', arguments: '{' });
  assert.equal(calls, [{ id: '', name: '', arguments: '' }, { id: 'b', name: 'g', arguments: '{' }], 'indexes keep matching the final list');
  growToolCall(calls, { index: 1, arguments: '}' });
  assert.equal(calls[1], { id: 'b', name: 'g', arguments: '{}' });
  assert.is(growToolCall(calls, { index: 1 }), undefined, 'a piece that adds nothing changes nothing');
});

test.run();
