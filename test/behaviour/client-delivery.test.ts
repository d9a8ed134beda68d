// The client library against a real relay: every event reaches the app exactly
// once and in order however often the socket dies, and a send whose ack was
// lost is re-sent without appending twice.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RelayClient, type ConversationUpdate } from '../../client/index.js';
import { controlledSockets, type SocketControl } from '../../client/testing.js';
import { eventually, startStack, type Stack } from '../helpers.js';

const LONG = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ') + ' — fin. 😊';

let stack: Stack;
let control: SocketControl;
let client: RelayClient;

test.before.each(async () => {
  stack = await startStack({ plan: () => ({ text: LONG, tokenDelayMs: 5 }) });
  control = controlledSockets();
  client = new RelayClient({
    url: stack.url,
    WebSocket: control.WebSocket,
    backoff: { initialMs: 5, maxMs: 40, factor: 2, jitter: 1 },
  });
});
test.after.each(async () => {
  client.close();
  await stack.close();
});

/** Seqs of the events the app saw, and a check that they only ever go up. */
function record(updates: ConversationUpdate[]) {
  const events = updates.filter((u) => u.type === 'message' || u.type.startsWith('reply.'));
  const seqs = events.map((e) => ('seq' in e ? e.seq : -1));
  return { events, seqs, increasing: seqs.every((s, i) => i === 0 || s > seqs[i - 1]!) };
}

test('one long reply arrives whole and in order across several killed sockets', async () => {
  await client.connect();
  const room = client.conversation('drops');
  const seen: ConversationUpdate[] = [];
  for (const name of ['message', 'reply.start', 'reply.delta', 'reply.end', 'joined'] as const) {
    room.on(name, (u) => seen.push(u));
  }
  const reply = await room.ask('tell me a long story');
  let kills = 0;
  room.on('reply.delta', () => {
    // Kill a socket at each sixth of the reply, from inside the delivery path, five times.
    // (By text, not by delta count: the server may merge deltas for a reader that lags.)
    if (kills < 5 && reply.text.length >= ((kills + 1) * LONG.length) / 6) {
      kills++;
      control.kill();
    }
  });
  const result = await reply.result;
  assert.is(kills, 5, 'five sockets were killed mid-reply');
  assert.ok(control.sockets.length >= 6, `reconnected after each kill (${control.sockets.length} sockets)`);
  assert.is(result.finishReason, 'stop');
  assert.is(result.text, LONG);

  const { events, seqs, increasing } = record(seen);
  assert.ok(increasing, `seqs strictly increasing: ${seqs.join(',')}`);
  assert.is(new Set(seqs).size, seqs.length, 'no seq twice');
  const appText = events.map((e) => (e.type === 'reply.delta' ? (e.text ?? '') : '')).join('');
  assert.is(appText, LONG, 'the deltas the app saw add up to the whole reply');
  assert.is(events.filter((e) => e.type === 'reply.end').length, 1);
  assert.is(events.filter((e) => e.type === 'message').length, 1);
  assert.not.ok(seen.some((u) => u.type === 'joined' && u.reset), 'every resume was covered by the log');
  const history = room.history;
  assert.is(history.length, 2);
  assert.is(history[1]!.text, LONG);
  assert.is(room.lastSeq, seqs[seqs.length - 1]);
});

test('the reply iterator yields the whole text across a drop', async () => {
  await client.connect();
  const room = client.conversation('iterate');
  const reply = await room.ask('go');
  let text = '';
  let n = 0;
  for await (const piece of reply) {
    text += piece;
    if (++n === 10) control.kill();
  }
  assert.is(text, LONG);
  assert.is((await reply.result).finishReason, 'stop');
});

test('a send whose ack was lost is re-sent and appended exactly once', async () => {
  await client.connect();
  const room = client.conversation('resend');
  await eventually(() => room.lastSeq !== undefined, 'joined');
  // The server appends the message, but the socket dies before the ack reaches the client.
  control.dropOnReceive = (json) => json.includes('"type":"message"') && control.sockets.length === 1;
  const messages: number[] = [];
  room.on('message', (m) => messages.push(m.seq));
  const acked = await room.send('exactly once please', { reply: false });
  assert.is(control.sockets.length, 2, 'the ack was lost with the first socket');
  assert.is(acked.message.text, 'exactly once please');
  assert.equal(messages, [acked.seq], 'the app saw the message once');

  const observer = await stack.connect();
  observer.send({ type: 'join', conversationId: 'resend' });
  const joined = await observer.next('joined');
  assert.equal(
    joined.history.map((m) => m.text),
    ['exactly once please'],
    'the conversation holds the message once',
  );
});

test('a send racing a socket kill (frame maybe never written) is appended exactly once', async () => {
  await client.connect();
  const room = client.conversation('race');
  await eventually(() => room.lastSeq !== undefined, 'joined');
  let killed = false;
  control.onSent = (json) => {
    if (!killed && json.includes('"type":"send"')) {
      killed = true;
      control.kill();
    }
  };
  const [a, b] = await Promise.all([room.send('first', { reply: false }), room.send('second', { reply: false })]);
  assert.ok(killed);
  assert.ok(b.seq > a.seq);
  const observer = await stack.connect();
  observer.send({ type: 'join', conversationId: 'race' });
  const joined = await observer.next('joined');
  assert.equal(
    joined.history.map((m) => m.text),
    ['first', 'second'],
  );
  assert.equal(
    room.history.map((m) => m.text),
    ['first', 'second'],
  );
});

test('a snapshot resume (log no longer covers lastSeq) replaces state and finishes the reply handle', async () => {
  await stack.close();
  // A tiny event log: by the time the client is back, its lastSeq has been trimmed away.
  stack = await startStack({ env: { EVENT_LOG_MAX: '16' }, plan: () => ({ text: LONG, tokenDelayMs: 2 }) });
  client.close();
  client = new RelayClient({ url: stack.url, WebSocket: control.WebSocket, backoff: { initialMs: 200, maxMs: 200, factor: 1, jitter: 0 } });
  await client.connect();
  const observer = await stack.connect();
  observer.send({ type: 'join', conversationId: 'reset' });
  await observer.next('joined');
  const room = client.conversation('reset');
  const reply = await room.ask('go');
  const resets: boolean[] = [];
  room.on('joined', (j) => resets.push(j.reset ?? false));
  await eventually(() => reply.text.length > 0, 'first delta');
  // The client stays away (every attempt dies on its first frame) until the reply has ended
  // and the log has moved past what the client last saw.
  let away = true;
  control.dropOnReceive = () => away;
  control.kill();
  await observer.next('reply.end');
  away = false;
  const result = await reply.result;
  assert.is(result.text, LONG, 'the handle caught up from the snapshot');
  assert.ok(resets.includes(true), 'a reset snapshot was applied');
  assert.is(room.history[room.history.length - 1]!.text, LONG);
});

test('cancelling a queued reply finishes its handle; the running one goes on', async () => {
  await client.connect();
  const room = client.conversation('queue');
  const first = await room.ask('first');
  const second = await room.ask('second');
  assert.not.ok(second.started, 'the second reply waits in the queue');
  await room.cancel(second.id);
  assert.equal(await second.result, { replyId: second.id, text: '', finishReason: 'cancelled' });
  const result = await first.result;
  assert.is(result.finishReason, 'stop');
  assert.is(result.text, LONG);
  // The cancelled reply never ran upstream.
  assert.is(stack.model.requests.length, 1);
});

test('with validate: false frames are trusted and delivery is the same', async () => {
  client.close();
  client = new RelayClient({ url: stack.url, WebSocket: control.WebSocket, validate: false, backoff: { initialMs: 5, maxMs: 40, factor: 2, jitter: 1 } });
  await client.connect();
  const room = client.conversation('trusted');
  const reply = await room.ask('go');
  let n = 0;
  room.on('reply.delta', () => ++n === 15 && control.kill());
  assert.is((await reply.result).text, LONG);
  assert.ok(control.sockets.length >= 2);
});

test.run();
