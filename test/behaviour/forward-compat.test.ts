// Today's client library against a newer server: a real relay behind a proxy
// that adds what a later protocol might (frames of types the client has never
// heard of, fields it does not know, in every frame and deep inside them). The
// client must read on as if they were not there: no errors, the whole reply,
// the same history, with and without schema validation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { RelayClient, type ClientError } from '../../client/index.js';
import { startStack, type Stack } from '../helpers.js';

const TEXT = 'Replies from a newer server read the same.';
const FUTURE_FIELD = { flagged: false, labels: ['safe'], version: 2 };

/** What a newer server might send: frames the client does not know, about a conversation it does. */
function unknownFrames(conversationId: string, n: number): object[] {
  return [
    { type: 'moderation.verdict', conversationId, seq: 1_000_000 + n, verdict: 'ok' },
    { type: 'branch.created', conversationId, branchId: `b${n}`, from: 'm1' },
    { type: 'preferences.changed', theme: { accent: '#f00' } },
  ];
}

/** Adds unknown fields to a frame and to the objects inside it (message, usage, members, history entries). */
function withUnknownFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withUnknownFields);
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = { future: FUTURE_FIELD };
  for (const [k, v] of Object.entries(value)) copy[k] = withUnknownFields(v);
  return copy;
}

interface Proxy {
  url: string;
  /** Unknown-type frames sent to clients so far. */
  injected: number;
  close(): Promise<void>;
}

/** A WebSocket proxy in front of the relay that passes client frames on as they are and "upgrades" server frames. */
async function newerServer(relayUrl: string): Promise<Proxy> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const proxy: Proxy = {
    url: '',
    injected: 0,
    close: () => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    }),
  };
  const address = wss.address();
  if (typeof address !== 'object' || address === null) throw new Error('the proxy has no port');
  proxy.url = `ws://127.0.0.1:${address.port}/ws`;
  wss.on('connection', (down) => {
    const up = new WebSocket(relayUrl);
    const pending: RawData[] = [];
    up.on('open', () => pending.splice(0).forEach((d) => up.send(d.toString())));
    down.on('message', (data) => (up.readyState === WebSocket.OPEN ? up.send(data.toString()) : pending.push(data)));
    up.on('message', (data) => {
      const frame: unknown = JSON.parse(data.toString());
      const conversationId = typeof frame === 'object' && frame !== null && 'conversationId' in frame ? String(frame.conversationId) : 'lobby';
      for (const extra of unknownFrames(conversationId, proxy.injected)) {
        down.send(JSON.stringify(extra));
        proxy.injected++;
      }
      down.send(JSON.stringify(withUnknownFields(frame)));
    });
    up.on('close', () => down.close());
    down.on('close', () => up.close());
    up.on('error', () => down.terminate());
    down.on('error', () => up.terminate());
  });
  return proxy;
}

let stack: Stack;
let proxy: Proxy;

test.before.each(async () => {
  stack = await startStack({ plan: () => ({ text: TEXT, reasoning: 'Thinking it over.', tokenDelayMs: 2 }) });
  proxy = await newerServer(stack.url);
});
test.after.each(async () => {
  await proxy.close();
  await stack.close();
});

for (const validate of [true, false]) {
  test(`unknown frame types and fields are ignored, not errors (validate: ${validate})`, async () => {
    const client = new RelayClient({ url: proxy.url, WebSocket, validate, pingIntervalMs: 0 });
    const errors: ClientError[] = [];
    client.on('error', (e) => errors.push(e));
    const welcome = await client.connect();
    assert.ok(client.features.includes('tools'), `welcome.features lists the server's features: ${client.features.join(', ')}`);
    if (validate) assert.not.ok('future' in welcome, 'a validated welcome keeps only the fields the client knows');

    const room = client.conversation('newer');
    const roomErrors: unknown[] = [];
    room.on('error', (e) => roomErrors.push(e));
    const reply = await room.ask('hello');
    const result = await reply.result;
    assert.is(result.finishReason, 'stop');
    assert.is(result.text, TEXT);
    assert.is(reply.reasoning, 'Thinking it over.');
    assert.equal(
      room.history.map((m) => [m.role, m.text]),
      [
        ['user', 'hello'],
        ['assistant', TEXT],
      ],
    );

    // A second socket joins the conversation later: the snapshot (history, members) comes through the proxy too.
    const late = new RelayClient({ url: proxy.url, WebSocket, validate, pingIntervalMs: 0 });
    late.on('error', (e) => errors.push(e));
    await late.connect();
    const lateRoom = late.conversation('newer');
    await new Promise<void>((resolve) => lateRoom.once('joined', () => resolve()));
    assert.equal(lateRoom.history.map((m) => m.text), ['hello', TEXT]);
    assert.ok(lateRoom.members.length >= 1);

    assert.ok(proxy.injected > 20, `the proxy sent frames of unknown types (${proxy.injected})`);
    assert.equal(errors, [], 'no client error');
    assert.equal(roomErrors, [], 'no conversation error');
    late.close();
    client.close();
  });
}

test.run();
