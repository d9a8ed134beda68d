// The load generator's clients, one class per contender's protocol: \`ws\` for
// the relay (any store, moderated or not) and floor, socket.io-client for
// socketio, the openai SDK reading the upstream directly for \`direct\`. Each
// reports what it receives to its Trial.
import OpenAI from 'openai';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { sendFrame, type TrialSpec } from './common.js';
import type { Room, Trial } from './loadgen-trial.js';

const CONNECT_TIMEOUT_MS = 20_000;

/** One socket of the trial (or an idle one). */
export abstract class Client {
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

export function makeClient(target: TrialSpec['target'], trial: Trial | undefined, url: string): Client {
  switch (target) {
    case 'relay':
    case 'relay-sqlite':
    case 'relay-moderated':
      return new RelayClient(trial, url);
    case 'floor':
      return new FloorClient(trial, url);
    case 'socketio':
      return new SocketIoClient(trial, url);
    case 'direct':
      return new DirectClient(trial, url);
  }
}

