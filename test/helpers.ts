// Test harness: a real relay on port 0 in front of the real built-in model
// (with fault injection), and a WebSocket client that records and validates
// every frame the server sends.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { WebSocket } from 'ws';
import { ServerFrame, type ClientFrame, type ServerFrameOf } from '../shared/protocol.js';
import { parseConfig } from '../server/config.js';
import { LocalModel, type FaultPlan, type RecordedRequest } from '../demo/localmodel.js';
import { createLogger } from '../server/log.js';
import { startRelay, type Relay } from '../server/http/relay.js';
import type { StoreWrapper } from '../server/backend/index.js';

export interface Stack {
  relay: Relay;
  model: LocalModel;
  url: string;
  /** The Redis key prefix this stack's relay uses (undefined on the memory backend). */
  redisPrefix: string | undefined;
  clients: TestClient[];
  connect(opts?: { hello?: boolean }): Promise<TestClient>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** The relay's environment; a function when it must name the stack's model (a MODELS_FILE pointing at it). */
  env?: Record<string, string> | ((model: LocalModel) => Record<string, string>);
  /** Where the relay's logs go (JSON lines); by default nowhere. */
  logTo?: DestinationStream;
  wrapStore?: StoreWrapper;
  tokenDelayMs?: number;
  plan?: (req: RecordedRequest) => FaultPlan | undefined;
}

/** The backend this run of a behaviour test is on (test/run.mjs runs each on every backend). */
export function backend(): 'memory' | 'sqlite' | 'redis' {
  if (process.env.TEST_REDIS_URL) return 'redis';
  return process.env.TEST_STORE === 'sqlite' ? 'sqlite' : 'memory';
}

/** The environment that puts a relay on this run's backend: each stack its own Redis prefix or data directory. */
function backendEnv(): { env: Record<string, string>; dataDir?: string } {
  switch (backend()) {
    case 'redis':
      return { env: { REDIS_URL: process.env.TEST_REDIS_URL!, REDIS_PREFIX: `test-${randomUUID()}:` } };
    case 'sqlite': {
      const dataDir = mkdtempSync(join(tmpdir(), 'relay-data-'));
      return { env: { STORE: 'sqlite', DATA_DIR: dataDir }, dataDir };
    }
    case 'memory':
      return { env: { STORE: 'memory' } };
  }
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const model = new LocalModel({ tokenDelayMs: opts.tokenDelayMs ?? 1, plan: opts.plan });
  await model.start();
  const placed = backendEnv();
  const env = typeof opts.env === 'function' ? opts.env(model) : opts.env;
  const config = parseConfig({ PORT: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', ...placed.env, ...env });
  const relay = await startRelay(config, {
    log: createLogger(config.LOG_LEVEL, false, opts.logTo),
    upstreamBaseURL: model.baseURL,
    upstreamApiKey: 'test',
    model: 'test-model',
    env: { ...process.env, ...env },
    ...(opts.wrapStore ? { wrapStore: opts.wrapStore } : {}),
  });
  const clients: TestClient[] = [];
  return {
    relay,
    model,
    url: relay.url,
    redisPrefix: config.REDIS_URL ? config.REDIS_PREFIX : undefined,
    clients,
    async connect(connectOpts = {}) {
      const c = await TestClient.connect(relay.url, connectOpts);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.kill();
      await relay.close(0);
      await model.close();
      if (placed.dataDir) rmSync(placed.dataDir, { recursive: true, force: true });
    },
  };
}

/** Text concatenated from a list of frames' reply.delta `text`. */
export function replyText(frames: ServerFrame[], replyId?: string): string {
  return frames
    .filter((f): f is ServerFrameOf<'reply.delta'> => f.type === 'reply.delta' && (!replyId || f.replyId === replyId))
    .map((f) => f.text ?? '')
    .join('');
}

type Waiter = { match: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class TestClient {
  readonly frames: ServerFrame[] = [];
  /** Frames that failed the server schema: a test failure on its own. */
  readonly invalid: unknown[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Waiter[] = [];
  private cursor = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const json: unknown = JSON.parse(data.toString());
      const parsed = ServerFrame.safeParse(json);
      if (!parsed.success) {
        this.invalid.push(json);
        return;
      }
      this.frames.push(parsed.data);
      for (const w of [...this.waiters]) {
        if (w.match(parsed.data)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          clearTimeout(w.timer);
          w.resolve(parsed.data);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string, opts: { hello?: boolean; headers?: Record<string, string> } = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers: opts.headers });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (opts.hello !== false) {
      client.send({ type: 'hello' });
      await client.next('welcome');
    }
    return client;
  }

  send(frame: ClientFrame): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The first frame (already received or still to come) matching, searching from the start. */
  waitFor<T extends ServerFrame['type']>(
    type: T,
    match: (f: ServerFrameOf<T>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ServerFrameOf<T>> {
    const test = (f: ServerFrame): f is ServerFrameOf<T> => f.type === type && match(f as ServerFrameOf<T>);
    const seen = this.frames.find(test);
    if (seen) return Promise.resolve(seen);
    return this.await(test, `${type}`, timeoutMs);
  }

  /** The next frame of this type after the ones `next` already returned. */
  async next<T extends ServerFrame['type']>(
    type: T,
    match: (f: ServerFrameOf<T>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ServerFrameOf<T>> {
    const test = (f: ServerFrame): f is ServerFrameOf<T> => f.type === type && match(f as ServerFrameOf<T>);
    for (let i = this.cursor; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (test(f)) {
        this.cursor = i + 1;
        return f;
      }
    }
    const found = await this.await(test, type, timeoutMs);
    this.cursor = this.frames.indexOf(found) + 1;
    return found;
  }

  /** The next frame answering the client frame with `ref` (its echo, or its error), whichever type it is. */
  async answerTo(ref: string, timeoutMs = 10_000): Promise<ServerFrame> {
    const test = (f: ServerFrame): f is ServerFrame => 'ref' in f && f.ref === ref;
    for (let i = this.cursor; i < this.frames.length; i++) {
      if (test(this.frames[i]!)) {
        this.cursor = i + 1;
        return this.frames[i]!;
      }
    }
    const found = await this.await(test, `an answer to ${ref}`, timeoutMs);
    this.cursor = this.frames.indexOf(found) + 1;
    return found;
  }

  private await<T extends ServerFrame>(test: (f: ServerFrame) => f is T, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        const got = this.frames.map((f) => f.type);
        reject(new Error(`timed out waiting for ${what}; got ${got.length} frames, the last: ${got.slice(-12).join(', ')}`));
      }, timeoutMs);
      this.waiters.push({ match: test, resolve: (f) => resolve(f as T), reject, timer });
    });
  }

  /** Frames of a conversation that carry a seq, in arrival order. */
  events(conversationId: string): Array<Extract<ServerFrame, { seq: number }>> {
    return this.frames.filter(
      (f): f is Extract<ServerFrame, { seq: number }> =>
        'seq' in f && f.type !== 'joined' && 'conversationId' in f && f.conversationId === conversationId,
    );
  }

  /** Destroy the TCP socket without a close frame, as a crashed client would. */
  kill(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters = [];
    // terminate() destroys the TCP socket: the server sees no close frame.
    this.ws.terminate();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll a condition (state the test cannot be told about directly); fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

/** A model table (MODELS_FILE) written to a fresh temporary file; its path. */
export function writeModelsFile(table: object): string {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-models-')), 'models.json');
  writeFileSync(path, JSON.stringify(table));
  return path;
}
