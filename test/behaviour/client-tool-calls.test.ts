// The client library's tool calls against a real relay: a reply's calls grow
// as the model writes them and end equal to reply.end.toolCalls; a client that
// joins mid-reply starts from the calls so far and ends with the same ones; a
// socket killed mid-call repeats no piece.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RelayClient, type BackoffOptions, type Reply, type ToolCall, type ToolCallUpdate } from '../../client/index.js';
import { controlledSockets, type SocketControl } from '../../client/testing.js';
import { startStack, type Stack } from '../helpers.js';

/** Two calls whose arguments the built-in model writes in many pieces. */
const CALLS: ToolCall[] = [
  { id: 'call_weather', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius","days":[1,2,3],"detail":"hourly forecast with wind"}' },
  { id: 'call_time', name: 'get_time', arguments: '{"timezone":"Europe/Paris","format":"24h clock with seconds"}' },
];

let stack: Stack;
let control: SocketControl;
const clients: RelayClient[] = [];

function newClient(backoff: Partial<BackoffOptions> = { initialMs: 5, maxMs: 40, factor: 2, jitter: 1 }): RelayClient {
  const c = new RelayClient({ url: stack.url, WebSocket: control.WebSocket, backoff });
  clients.push(c);
  return c;
}

test.before.each(async () => {
  // Slow enough that a second client can join while the calls are still being written.
  stack = await startStack({ plan: () => ({ text: 'Let me look that up.', toolCalls: CALLS, tokenDelayMs: 15 }) });
  control = controlledSockets();
});
test.after.each(async () => {
  for (const c of clients.splice(0)) c.close();
  await stack.close();
});

/** Every toolCall update of a reply, and each one that did not extend the call it updated (a repeated or lost piece). */
function watch(reply: Reply): { updates: ToolCallUpdate[]; shrank: string[] } {
  const updates: ToolCallUpdate[] = [];
  const shrank: string[] = [];
  reply.on('toolCall', (u) => {
    const before = updates.filter((p) => p.index === u.index).at(-1);
    if (before && !u.call.arguments.startsWith(before.call.arguments)) shrank.push(`${u.index}: ${before.call.arguments} then ${u.call.arguments}`);
    updates.push(u);
  });
  return { updates, shrank };
}

/** Resolves once `check` holds for the reply's calls, looked at on each change. */
function until(reply: Reply, what: string, check: (calls: readonly ToolCall[]) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    if (check(reply.toolCalls)) return resolve();
    const off = reply.on('toolCall', () => {
      if (!check(reply.toolCalls)) return;
      off();
      resolve();
    });
    void reply.result.then(() => (off(), reject(new Error(`the reply ended before ${what}`))));
  });
}

const strictPrefix = (part: string, whole: string) => part.length < whole.length && whole.startsWith(part);

test('the calls grow piece by piece and end equal to reply.end.toolCalls', async () => {
  const client = newClient();
  await client.connect();
  const room = client.conversation('tools-grow');
  const ends: unknown[] = [];
  room.on('reply.end', (e) => ends.push(e.toolCalls));
  const reply = await room.ask('What is the weather in Paris?');
  const { updates, shrank } = watch(reply);
  const result = await reply.result;

  assert.equal(shrank, [], 'calls only ever grew');
  assert.is(result.finishReason, 'tool_calls', JSON.stringify(result.error));
  assert.equal(ends, [CALLS], 'reply.end lists both calls');
  assert.equal(result.toolCalls, CALLS);
  assert.equal(reply.toolCalls, CALLS);
  assert.equal(room.history.find((m) => m.id === reply.id)?.toolCalls, CALLS, 'the history entry has them');
  // Partly written: more than nothing, less than the whole (the end's list alone would show only the whole).
  const partial = updates.filter((u) => u.call.arguments.length > 0 && strictPrefix(u.call.arguments, CALLS[u.index]!.arguments));
  assert.ok(
    [0, 1].every((i) => partial.some((u) => u.index === i)),
    `each call was seen partly written (${updates.length} updates, ${partial.length} partial)`,
  );
});

test('a client that joins mid-reply starts from the calls so far and ends with the same', async () => {
  const first = newClient();
  await first.connect();
  const room = first.conversation('tools-join');
  const reply = await room.ask('Weather and time, please');
  await until(reply, 'the first call was half written', (calls) => !!calls[0] && strictPrefix(calls[0].arguments, CALLS[0]!.arguments) && calls[0].arguments.length > 0);

  const late = newClient();
  await late.connect();
  const lateRoom = late.conversation('tools-join');
  await new Promise<void>((resolve) => lateRoom.once('joined', () => resolve()));
  const lateReply = lateRoom.streaming;
  if (!lateReply) throw new Error('the late joiner sees no reply in flight');
  assert.is(lateReply.id, reply.id);
  const seeded = lateReply.toolCalls;
  assert.ok(seeded.length >= 1, 'the snapshot carried the calls written so far');
  seeded.forEach((call, i) => {
    assert.is(call.name, CALLS[i]!.name);
    assert.ok(CALLS[i]!.arguments.startsWith(call.arguments), `seeded call ${i} is a prefix of the final one`);
  });
  assert.equal(lateRoom.history.at(-1)?.toolCalls, seeded, 'the late joiner’s history entry has them too');
  const { shrank } = watch(lateReply);

  const [a, b] = await Promise.all([reply.result, lateReply.result]);
  assert.equal(shrank, [], 'the late joiner’s calls went on from the snapshot without a repeat');
  assert.equal(a.toolCalls, CALLS);
  assert.equal(b.toolCalls, CALLS);
  assert.equal(lateReply.toolCalls, CALLS);
  assert.equal(lateRoom.history.at(-1)?.toolCalls, CALLS);
});

test('a socket killed mid-call resumes without repeating or losing a piece', async () => {
  // Back after ~150 ms: several pieces wait in the log, so the replay carries more than one.
  const client = newClient({ initialMs: 150, maxMs: 150, factor: 1, jitter: 0 });
  await client.connect();
  const room = client.conversation('tools-resume');
  const reply = await room.ask('Weather, with a flaky network');
  const { updates, shrank } = watch(reply);
  await until(reply, 'the second call began', (calls) => calls.length === 2 && calls[1]!.arguments.length > 0);
  control.kill();
  const result = await reply.result;
  assert.ok(control.sockets.length >= 2, 'reconnected');
  assert.equal(shrank, [], 'no piece repeated or lost across the resume');
  assert.equal(result.toolCalls, CALLS);
  assert.equal(reply.toolCalls, CALLS);
  assert.equal(room.history.find((m) => m.id === reply.id)?.toolCalls, CALLS);
  assert.ok(updates.length > 2);
});

test.run();
