// A load generator process, forked by bench/run.ts (1–2 of them share the
// clients of a trial). It speaks each contender's protocol — `ws` for relay
// and floor, socket.io-client for socketio, the openai SDK for `direct`
// (reading the upstream with no relay at all) — and measures, per receiving
// socket: every token's upstream-send → receive latency (from the ` t=<ms>`
// stamp in its text), time to first token from the sender's send, tokens and
// frames. Commands and results travel over the IPC channel (bench/common.ts).
import OpenAI from 'openai';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import {
  forEachStamp,
  Histogram,
  now,
  sendFrame,
  type Contender,
  type FromLoadgen,
  type RoomSpec,
  type ToLoadgen,
  type TrialResult,
  type TrialSpec,
} from './common.js';

const LOADGEN = Number(process.env.LOADGEN_ID ?? 0);
/** Handshakes in flight at once while connecting (per process). */
const CONNECT_CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 200);
const CONNECT_TIMEOUT_MS = 20_000;
const PROMPT = 'Benchmark: stream your tokens, please.';

function tell(msg: FromLoadgen): void {
  process.send?.(msg);
}

// ------------------------------------------------------------------ trial state

class Room {
  sentAt = 0;
  ended = 0;
  done = false;
  readonly receivers: Client[] = [];
  sender: Client | undefined;
  constructor(readonly spec: RoomSpec) {}
}

class Trial {
  readonly latency = new Histogram();
  readonly ttft = new Histogram();
  readonly latencyA = new Histogram();
  readonly latencyB = new Histogram();
  tokens = 0;
  frames = 0;
  errors = 0;
  closedEarly = 0;
  firstError: string | undefined;
  roomsDone = 0;
  slowFrames = 0;
  slowTokens = 0;
  /** After the trial the slow member reads again, to see what the server kept for it (and whether it closed it). */
  slowFramesAfter = 0;
  slowTokensAfter = 0;
  slowBytesAfter = 0;
  draining = false;
  slowCloseCode: number | undefined;
  slow: Client | undefined;
  startedAt = 0;
  finished = false;
  readonly rooms = new Map<string, Room>();
  private deadline: NodeJS.Timeout | undefined;

  constructor(readonly spec: TrialSpec) {}

  error(message: string): void {
    this.errors++;
    this.firstError ??= message;
  }

  frame(c: Client, bytes = 0): void {
    if (c.slow) {
      if (this.draining) {
        this.slowFramesAfter++;
        this.slowBytesAfter += bytes;
      }
      else if (!this.finished) this.slowFrames++;
      return;
    }
    if (!this.finished) this.frames++;
  }

  /** Tokens arrived on a socket: `raw` holds one or more stamps (a raw frame or a delta's text). */
  text(c: Client, raw: string): void {
    if (c.slow) {
      const n = forEachStamp(raw, () => undefined);
      if (this.draining) this.slowTokensAfter += n;
      else if (!this.finished) this.slowTokens += n;
      return;
    }
    if (this.finished) return;
    const t = now();
    const split = this.spec.split;
    let n: number;
    if (split) {
      const since = t - this.startedAt;
      const into =
        split.bFrom !== undefined && split.bTo !== undefined && since >= split.bFrom && since < split.bTo
          ? this.latencyB
          : since >= split.aFrom && since < split.aTo
            ? this.latencyA
            : undefined;
      n = forEachStamp(raw, (stamp) => {
        this.latency.record(t - stamp);
        into?.record(t - stamp);
      });
    } else {
      n = forEachStamp(raw, (stamp) => this.latency.record(t - stamp));
    }
    if (n === 0) return;
    this.tokens += n;
    if (!c.gotFirst && c.room) {
      c.gotFirst = true;
      this.ttft.record(t - c.room.sentAt);
    }
  }

  end(c: Client): void {
    if (this.finished || c.slow || c.ended || !c.room) return;
    c.ended = true;
    const room = c.room;
    room.ended++;
    if (!room.done && room.ended >= room.receivers.length) {
      room.done = true;
      this.roomsDone++;
      if (this.roomsDone === this.rooms.size) this.finish();
    }
  }

  closed(c: Client, code: number): void {
    if (c.slow) {
      this.slowCloseCode ??= code;
      return;
    }
    if (this.finished) return;
    if (!c.ended) {
      this.closedEarly++;
      this.error(`socket closed early (${code})`);
      this.end(c);
    }
  }

  go(t0: number, slow: Client | undefined): void {
    const { rampMs, totalRooms, tokens } = this.spec;
    this.startedAt = t0;
    const prompt = this.spec.tokenPad ? `${PROMPT} [pad=${this.spec.tokenPad}]` : PROMPT;
    this.slow = slow;
    if (slow && this.spec.slowPauseAtMs !== undefined) {
      setTimeout(() => slow.pause(), Math.max(0, t0 + this.spec.slowPauseAtMs - now()));
    }
    this.deadline = setTimeout(() => this.finish(), Math.max(0, t0 - now()) + this.spec.deadlineMs);
    if (this.rooms.size === 0) return this.finish();
    for (const room of this.rooms.values()) {
      const at = t0 + (totalRooms > 1 ? (room.spec.index / totalRooms) * rampMs : 0);
      setTimeout(() => {
        if (this.finished || !room.sender) return;
        room.sentAt = now();
        room.sender.send(room.spec.id, prompt, tokens);
      }, Math.max(0, at - now()));
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadline);
    if (this.slow && this.spec.slowPauseAtMs !== undefined) {
      // Read the paused socket again: its backlog, and a close frame if the server gave up on it.
      this.draining = true;
      this.slow.resume();
      setTimeout(() => this.report(), 1500);
    } else {
      this.report();
    }
  }

  private report(): void {
    this.draining = false;
    const result: TrialResult = {
      loadgen: LOADGEN,
      latency: this.latency.toJSON(),
      ttft: this.ttft.toJSON(),
      ...(this.spec.split ? { latencyA: this.latencyA.toJSON(), latencyB: this.latencyB.toJSON() } : {}),
      tokens: this.tokens,
      frames: this.frames,
      expectedTokens: [...this.rooms.values()].reduce((n, r) => n + r.receivers.length * this.spec.tokens, 0),
      roomsDone: this.roomsDone,
      roomsTimedOut: this.rooms.size - this.roomsDone,
      errors: this.errors,
      closedEarly: this.closedEarly,
      ...(this.firstError ? { firstError: this.firstError } : {}),
      startedAt: this.startedAt,
      endedAt: now(),
      slowFrames: this.slowFrames,
      slowTokens: this.slowTokens,
      slowFramesAfter: this.slowFramesAfter,
      slowTokensAfter: this.slowTokensAfter,
      slowBytesAfter: this.slowBytesAfter,
      ...(this.slowCloseCode !== undefined ? { slowCloseCode: this.slowCloseCode } : {}),
    };
    tell({ ev: 'result', result });
  }
}

// ------------------------------------------------------------------ clients

/** One socket of the trial (or an idle one). */
abstract class Client {
  room: Room | undefined;
  gotFirst = false;
  ended = false;
  slow = false;
  constructor(
    readonly trial: Trial | undefined,
    readonly url: string,
  ) {}
  abstract open(): Promise<void>;
  abstract join(roomId: string): Promise<void>;
  abstract send(roomId: string, text: string, maxTokens: number): void;
  abstract pause(): void;
  abstract resume(): void;
  abstract close(): void;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms))),
  ]);
}

/** Shared by the two plain-WebSocket protocols. */
abstract class WsClient extends Client {
  protected ws: WebSocket | undefined;
  private opened = false;

  protected connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
      this.ws = ws;
      ws.on('message', (data) => this.message(String(data)));
      ws.once('open', () => {
        this.opened = true;
        resolve();
      });
      ws.on('error', (err) => {
        if (!this.opened) reject(err);
        else this.trial?.error(err.message);
      });
      ws.once('close', (code) => {
        if (!this.opened) reject(new Error(`closed before open (${code})`));
        this.trial?.closed(this, code);
      });
    });
  }

  protected abstract message(s: string): void;

  pause(): void {
    this.ws?.pause();
  }

  resume(): void {
    this.ws?.resume();
  }

  close(): void {
    this.ws?.terminate();
  }
}

/** This repository's relay: hello → welcome, join → joined, send → reply.* frames. */
class RelayClient extends WsClient {
  private welcome: (() => void) | undefined;
  private readonly joins = new Map<string, () => void>();

  async open(): Promise<void> {
    await this.connect();
    await withTimeout(
      new Promise<void>((resolve) => {
        this.welcome = resolve;
        this.ws!.send('{"type":"hello"}');
      }),
      CONNECT_TIMEOUT_MS,
      'relay hello',
    );
  }

  join(conversationId: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        this.joins.set(conversationId, resolve);
        this.ws!.send(JSON.stringify({ type: 'join', conversationId }));
      }),
      CONNECT_TIMEOUT_MS,
      'relay join',
    );
  }

  send(conversationId: string, text: string, maxTokens: number): void {
    this.ws!.send(sendFrame('relay', conversationId, text, maxTokens));
  }

  protected message(s: string): void {
    const trial = this.trial;
    trial?.frame(this, s.length);
    // The hot path reads the stamps straight from the frame; anything else is parsed.
    if (s.startsWith('{"type":"reply.delta"')) return trial?.text(this, s);
    let f: { type?: string; conversationId?: string; text?: string; code?: string; message?: string };
    try {
      f = JSON.parse(s) as typeof f;
    } catch {
      return trial?.error('unparseable frame');
    }
    switch (f.type) {
      case 'reply.delta':
        if (f.text) trial?.text(this, f.text);
        return;
      case 'reply.end':
        return trial?.end(this);
      case 'welcome':
        this.welcome?.();
        this.welcome = undefined;
        return;
      case 'joined': {
        const done = f.conversationId ? this.joins.get(f.conversationId) : undefined;
        if (done && f.conversationId) {
          this.joins.delete(f.conversationId);
          done();
        }
        return;
      }
      case 'error':
        return trial?.error(`relay error ${f.code}: ${f.message}`);
    }
  }
}

/** bench/floor.ts. */
class FloorClient extends WsClient {
  private joined: (() => void) | undefined;

  open(): Promise<void> {
    return this.connect();
  }

  join(room: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        this.joined = resolve;
        this.ws!.send(JSON.stringify({ type: 'join', room }));
      }),
      CONNECT_TIMEOUT_MS,
      'floor join',
    );
  }

  send(room: string, text: string, maxTokens: number): void {
    this.ws!.send(sendFrame('floor', room, text, maxTokens));
  }

  protected message(s: string): void {
    const trial = this.trial;
    trial?.frame(this, s.length);
    if (s.startsWith('{"type":"reply.delta"')) return trial?.text(this, s);
    if (s === '{"type":"reply.end"}') return trial?.end(this);
    if (s === '{"type":"joined"}') {
      this.joined?.();
      this.joined = undefined;
    }
  }
}

/** bench/socketio.ts, over the websocket transport only. */
class SocketIoClient extends Client {
  private socket: Socket | undefined;

  open(): Promise<void> {
    const u = new URL(this.url);
    const socket = ioClient(`http://${u.host}`, {
      path: u.pathname,
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    this.socket = socket;
    const trial = this.trial;
    socket.on('delta', (m: { text?: string }) => {
      trial?.frame(this, (m.text?.length ?? 0) + 24);
      if (m.text) trial?.text(this, m.text);
    });
    socket.on('end', () => {
      trial?.frame(this);
      trial?.end(this);
    });
    socket.on('failed', (m: { message?: string }) => trial?.error(`socketio upstream failure: ${m.message}`));
    return new Promise((resolve, reject) => {
      let opened = false;
      socket.once('connect', () => {
        opened = true;
        resolve();
      });
      socket.once('connect_error', (err) => reject(err));
      socket.on('disconnect', (reason) => {
        if (opened) trial?.closed(this, reason === 'io client disconnect' ? 1000 : 1006);
      });
    });
  }

  async join(room: string): Promise<void> {
    await withTimeout(this.socket!.emitWithAck('join', room) as Promise<unknown>, CONNECT_TIMEOUT_MS, 'socketio join');
  }

  send(room: string, text: string, maxTokens: number): void {
    this.socket!.emit('send', { room, text, maxTokens });
  }

  /** engine.io-client's Node websocket transport is a `ws` WebSocket. */
  private wire(): { pause(): void; resume(): void } {
    const transport = this.socket?.io.engine?.transport as unknown as { ws?: { pause?: () => void; resume?: () => void } } | undefined;
    const ws = transport?.ws;
    if (typeof ws?.pause !== 'function' || typeof ws.resume !== 'function') throw new Error('cannot reach the socket.io transport');
    return ws as { pause(): void; resume(): void };
  }

  pause(): void {
    this.wire().pause();
  }

  resume(): void {
    this.wire().resume();
  }

  close(): void {
    this.socket?.disconnect();
  }
}

/** No relay: the openai SDK reads the upstream directly (the baseline for time to first token). */
class DirectClient extends Client {
  private static sdk: OpenAI | undefined;
  private abort = new AbortController();

  async open(): Promise<void> {
    DirectClient.sdk ??= new OpenAI({ apiKey: 'bench', baseURL: this.url, maxRetries: 0 });
  }

  async join(): Promise<void> {
    throw new Error('direct has no rooms');
  }

  send(_room: string, text: string, maxTokens: number): void {
    const trial = this.trial!;
    void (async () => {
      try {
        const stream = await DirectClient.sdk!.chat.completions.create(
          {
            model: 'bench-model',
            messages: [{ role: 'user', content: text }],
            stream: true,
            max_tokens: maxTokens,
            stream_options: { include_usage: true },
          },
          { signal: this.abort.signal },
        );
        for await (const chunk of stream) {
          trial.frame(this);
          const content = chunk.choices[0]?.delta?.content;
          if (content) trial.text(this, content);
        }
      } catch (err) {
        trial.error(err instanceof Error ? err.message : String(err));
      }
      trial.end(this);
    })();
  }

  pause(): void {}

  resume(): void {}

  close(): void {
    this.abort.abort();
  }
}

function makeClient(target: TrialSpec['target'], trial: Trial | undefined, url: string): Client {
  switch (target) {
    case 'relay':
      return new RelayClient(trial, url);
    case 'floor':
      return new FloorClient(trial, url);
    case 'socketio':
      return new SocketIoClient(trial, url);
    case 'direct':
      return new DirectClient(trial, url);
  }
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

// ------------------------------------------------------------------ commands

let trial: Trial | undefined;
let slowClient: Client | undefined;
let clients: Client[] = [];
const idle: Client[] = [];

async function prepare(spec: TrialSpec): Promise<void> {
  const t = new Trial(spec);
  trial = t;
  slowClient = undefined;
  let errors = 0;
  let firstError: string | undefined;
  const fail = (err: unknown) => {
    errors++;
    firstError ??= err instanceof Error ? err.message : String(err);
  };
  // Every receiver; the first of each room is its sender.
  const jobs: Array<{ room: Room; sender: boolean }> = [];
  for (const rs of spec.rooms) {
    const room = new Room(rs);
    t.rooms.set(rs.id, room);
    for (let i = 0; i < (spec.target === 'direct' ? 1 : rs.members); i++) jobs.push({ room, sender: i === 0 });
  }
  await pool(jobs, CONNECT_CONCURRENCY, async ({ room, sender }) => {
    const c = makeClient(spec.target, t, spec.url);
    c.room = room;
    clients.push(c);
    try {
      await c.open();
      // The sender joins by sending (as a first message would); the others join first.
      if (!sender) await c.join(room.spec.id);
      room.receivers.push(c);
      if (sender) room.sender = c;
    } catch (err) {
      fail(err);
    }
  });
  if (spec.slowRooms?.length) {
    const c = makeClient(spec.target, t, spec.url);
    c.slow = true;
    clients.push(c);
    try {
      await c.open();
      for (const id of spec.slowRooms) await c.join(id);
      slowClient = c;
    } catch (err) {
      fail(err);
    }
  }
  tell({ ev: 'prepared', loadgen: LOADGEN, clients: clients.length, errors, ...(firstError ? { firstError } : {}) });
}

async function openIdle(target: Contender, url: string, total: number): Promise<void> {
  let errors = 0;
  let firstError: string | undefined;
  const want = Math.max(0, total - idle.length);
  const batch = Array.from({ length: want }, () => makeClient(target, undefined, url));
  await pool(batch, CONNECT_CONCURRENCY, async (c) => {
    try {
      await c.open();
      idle.push(c);
    } catch (err) {
      errors++;
      firstError ??= err instanceof Error ? err.message : String(err);
      c.close();
    }
  });
  tell({ ev: 'idle', loadgen: LOADGEN, open: idle.length, errors, ...(firstError ? { firstError } : {}) });
}

function reset(): void {
  trial?.finish();
  trial = undefined;
  slowClient = undefined;
  for (const c of clients) c.close();
  for (const c of idle) c.close();
  clients = [];
  idle.length = 0;
  tell({ ev: 'reset', loadgen: LOADGEN });
}

process.on('message', (msg: ToLoadgen) => {
  switch (msg.cmd) {
    case 'prepare':
      void prepare(msg.spec);
      return;
    case 'go':
      trial?.go(msg.t0, slowClient);
      return;
    case 'idle':
      void openIdle(msg.target, msg.url, msg.total);
      return;
    case 'reset':
      return reset();
    case 'exit':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
tell({ ev: 'ready', loadgen: LOADGEN });
