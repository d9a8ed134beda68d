// Reconnect policy: the backoff's bounds, and what each close code makes the
// client do, against tiny scripted servers and a real relay behind a proxy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { closeCodes } from '../../shared/codes.js';
import { ClientFrame, PROTOCOL_VERSION, type ServerFrame } from '../../shared/protocol.js';
import { Backoff, RelayClient, type StateChange } from '../../client/index.js';
import { eventually, sleep, startStack } from '../helpers.js';

// ------------------------------------------------------------------ pure unit

test('backoff: every delay lies in [0, cap] and the ceiling grows with attempts', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 5_000, factor: 2, jitter: 1 });
  let last = 0;
  for (let i = 0; i < 30; i++) {
    const ceiling = b.ceiling(b.attempt);
    const d = b.next();
    assert.ok(d >= 0 && d <= ceiling && d <= 5_000, `delay ${d} within [0, ${ceiling}]`);
    assert.ok(ceiling >= last, 'ceiling never shrinks');
    last = ceiling;
  }
  assert.is(b.ceiling(0), 100);
  assert.is(b.ceiling(3), 800);
  assert.is(b.ceiling(100), 5_000, 'capped (and finite) for large attempts');
});

test('backoff: the extremes of the random draw, the overload floor, and reset', () => {
  const hi = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, jitter: 1 }, () => 1);
  assert.equal([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()], [100, 200, 400, 800, 1_000]);
  hi.reset();
  assert.is(hi.attempt, 0);
  assert.is(hi.next(), 100, 'after a reset the ceiling starts over');

  const lo = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, jitter: 1 }, () => 0);
  assert.is(lo.next(), 0, 'full jitter may retry at once');
  assert.is(lo.next(0.5), 100, 'the overload floor keeps half the ceiling (200)');

  const half = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.25 }, () => 0);
  assert.is(half.next(), 75, 'jitter 0.25 randomizes only the top quarter');
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }));
});

// ------------------------------------------------------------------ scripted servers

interface Scripted {
  url: string;
  connections: number;
  hellos: Array<string | undefined>;
  close(): Promise<void>;
}

/** A ws server on port 0 that answers each hello with `decide(helloIndex, token)`: a close code, or 'welcome'. */
async function scriptedServer(decide: (n: number, token: string | undefined) => number | 'welcome'): Promise<Scripted> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const s: Scripted = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`,
    connections: 0,
    hellos: [],
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
  wss.on('connection', (ws) => {
    s.connections++;
    ws.on('message', (data) => {
      const frame = ClientFrame.parse(JSON.parse(data.toString()));
      if (frame.type !== 'hello') return;
      const n = s.hellos.push(frame.token) - 1;
      const verdict = decide(n, frame.token);
      if (verdict !== 'welcome') return ws.close(verdict, 'scripted');
      const welcome: ServerFrame = {
        type: 'welcome',
        ref: frame.ref,
        sessionId: `s${n}`,
        user: { id: 'u1', name: 'Test' },
        protocol: PROTOCOL_VERSION,
        limits: { maxFrameBytes: 65536, maxConversations: 64, maxActiveReplies: 4, maxQueuedReplies: 4, maxTextChars: 16000 },
      };
      ws.send(JSON.stringify(welcome));
    });
  });
  return s;
}

const fast = { initialMs: 4, maxMs: 64, factor: 2, jitter: 1 };

test('4401 with a fixed token: closed, no reconnect, until setToken()', async () => {
  const server = await scriptedServer((_, token) => (token === 'good' ? 'welcome' : closeCodes.unauthorized));
  const client = new RelayClient({ url: server.url, token: 'bad', WebSocket, backoff: fast });
  const states: StateChange[] = [];
  const errors: string[] = [];
  client.on('state', (s) => states.push(s));
  client.on('error', (e) => errors.push(e.code));
  try {
    const failure = await client.connect().then(() => undefined, (e: unknown) => e);
    assert.instance(failure, Error, 'connect() rejects');
    assert.is(client.state, 'closed');
    assert.is(states[states.length - 1]!.code, 4401);
    assert.ok(errors.includes('unauthorized'));
    // Many backoff periods later there is still only the one connection.
    await sleep(fast.maxMs * 4);
    assert.is(server.connections, 1, 'no reconnect after 4401');
    assert.not.ok(states.some((s) => s.state === 'reconnecting'));

    client.setToken('good');
    await eventually(() => client.state === 'open', 'open with the new token');
    assert.equal(server.hellos, ['bad', 'good']);
  } finally {
    client.close();
    await server.close();
  }
});

test('4401 with a token function: asks it again and reconnects', async () => {
  const server = await scriptedServer((_, token) => (token === 't3' ? 'welcome' : closeCodes.unauthorized));
  let calls = 0;
  const client = new RelayClient({ url: server.url, token: async () => `t${++calls}`, WebSocket, backoff: fast });
  try {
    await client.connect();
    assert.equal(server.hellos, ['t1', 't2', 't3']);
  } finally {
    client.close();
    await server.close();
  }
});

test('1013 and 4429: reconnect with a growing, floored backoff, then open', async () => {
  const codes = [closeCodes.tryAgainLater, closeCodes.rateLimitAbuse, closeCodes.tryAgainLater, closeCodes.tryAgainLater];
  const server = await scriptedServer((n) => codes[n] ?? 'welcome');
  const client = new RelayClient({ url: server.url, WebSocket, backoff: fast });
  const waits: StateChange[] = [];
  client.on('reconnecting', (s) => s.delayMs !== undefined && waits.push(s));
  try {
    await client.connect();
    assert.equal(waits.map((w) => w.code), codes);
    assert.equal(waits.map((w) => w.attempt), [1, 2, 3, 4]);
    const b = new Backoff(fast);
    waits.forEach((w, i) => {
      const ceiling = b.ceiling(i);
      assert.ok(w.delayMs! >= ceiling / 2 && w.delayMs! <= ceiling, `wait ${i}: ${w.delayMs} in [${ceiling / 2}, ${ceiling}]`);
    });
    assert.is(server.connections, 5);
  } finally {
    client.close();
    await server.close();
  }
});

// ------------------------------------------------------------------ a real relay behind a proxy

/** Pipes sockets to `target`; goAway() closes every client side with 1001, as a relay restarting would. */
async function proxy(target: string) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const pairs = new Set<{ client: WebSocket; upstream: WebSocket }>();
  wss.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const pair = { client, upstream };
    pairs.add(pair);
    const early: string[] = [];
    upstream.on('open', () => early.splice(0).forEach((m) => upstream.send(m)));
    client.on('message', (d) => (upstream.readyState === WebSocket.OPEN ? upstream.send(d.toString()) : early.push(d.toString())));
    upstream.on('message', (d) => client.readyState === WebSocket.OPEN && client.send(d.toString()));
    client.on('close', () => (upstream.terminate(), pairs.delete(pair)));
    upstream.on('close', (code) => client.readyState === WebSocket.OPEN && client.close(code === 1005 ? 1000 : code));
    upstream.on('error', () => {});
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`,
    goAway() {
      for (const p of pairs) p.client.close(closeCodes.goingAway, 'server going away');
    },
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}

test('1001 mid-reply: reconnects, resumes with since, and the reply completes once', async () => {
  const text = Array.from({ length: 80 }, (_, i) => `t${i}`).join(' ');
  const stack = await startStack({ plan: () => ({ text, tokenDelayMs: 5 }) });
  const front = await proxy(stack.url);
  const client = new RelayClient({ url: front.url, WebSocket, backoff: fast });
  const codes: number[] = [];
  const attempts: number[] = [];
  client.on('reconnecting', (s) => s.code !== undefined && (codes.push(s.code), attempts.push(s.attempt!)));
  try {
    await client.connect();
    const room = client.conversation('going-away');
    const deltas: string[] = [];
    const seqs: number[] = [];
    const resets: boolean[] = [];
    room.on('reply.delta', (d) => (deltas.push(d.text ?? ''), seqs.push(d.seq)));
    room.on('joined', (j) => resets.push(j.reset ?? false));
    const reply = await room.ask('hi');
    await eventually(() => deltas.length >= 10, 'ten deltas');
    front.goAway();
    const result = await reply.result;
    assert.equal(codes, [1001]);
    assert.equal(attempts, [1], 'the backoff was reset by the earlier successful connect');
    assert.is(result.text, text);
    assert.is(deltas.join(''), text);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'in order, no duplicates');
    assert.equal(resets, [false], 'one snapshot at first join, none after the resume');
  } finally {
    client.close();
    await front.close();
    await stack.close();
  }
});

test.run();
