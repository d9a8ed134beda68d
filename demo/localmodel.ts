// A built-in streaming model on plain node:http that speaks three upstream
// dialects: OpenAI Chat Completions, OpenAI Responses and Anthropic Messages. It
// lets `npm start` work without an API key, and it is the real HTTP upstream of
// the integration tests, which steer it per request through a FaultPlan. The
// dialects only encode a reply decided up front; pacing and faults live here, so
// every fault means the same thing whichever dialect is spoken. It also serves the
// example operator tools of DEMO_TOOLS under /tools/. Responses may run in
// background mode: see demo/background.ts for re-attaching to them and cancelling them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { anthropic } from './dialects/anthropic.js';
import { chat } from './dialects/chat.js';
import { openaiError, replayBody, type Dialect, type Encoded } from './dialects/dialect.js';
import { responseId, responses, wantsBackground } from './dialects/responses.js';
import { BackgroundRegistry, BackgroundResponse, serveBackground, type BackgroundState } from './background.js';
import type { DialectName, FaultPlan, RecordedRequest } from './faultplan.js';
import { planReply } from './script.js';
import { moderate } from './moderation.js';
import { isRecord } from '../server/upstream/pieces.js';
import { DEMO_TOOLS, callTool, type ToolRequest } from './tools.js';
import { toolUse } from './tooluse.js';

export type { BackgroundState, BackgroundStatus } from './background.js';
export type { DialectName, FaultPlan, OfferedTool, RecordedRequest, ToolCall, Turn } from './faultplan.js';
export { demoReply, splitTokens } from './script.js';
export { DEMO_TOOLS, type DemoTool, type ToolRequest } from './tools.js';

export interface LocalModelOptions {
  host?: string; // default 127.0.0.1
  port?: number; // default 0 (ephemeral)
  tokenDelayMs?: number; // default 25, roughly a real model's 40 tokens/s
  model?: string; // default "relay-demo-1"
  plan?: (req: RecordedRequest) => FaultPlan | undefined;
}

const MAX_RECORDS = 1000;
// Room for a request with several attachments inline (base64 adds a third).
const MAX_BODY_BYTES = 128 * 1024 * 1024;
/** Request bodies the records may hold together; the oldest records go first. */
const MAX_RECORDED_BYTES = 256 * 1024 * 1024;

const ROUTES = new Map<string, [DialectName, Dialect]>([
  ['/v1/chat/completions', ['chat', chat]],
  ['/v1/responses', ['responses', responses]],
  ['/v1/messages', ['anthropic', anthropic]],
]);

/** Appends `item`, dropping the oldest beyond MAX_RECORDS (and MAX_RECORDED_BYTES) so a long-running server stays bounded. */
function record<T>(list: T[], item: T, bytes: (item: T) => number = () => 0): void {
  list.push(item);
  if (list.length > MAX_RECORDS) list.splice(0, list.length - MAX_RECORDS);
  let total = list.reduce((sum, i) => sum + bytes(i), 0);
  while (total > MAX_RECORDED_BYTES && list.length > 1) total -= bytes(list.shift()!);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const pathOf = (req: IncomingMessage): string => (req.url ?? '/').split('?')[0] ?? '/';

/** The request body, or undefined when it is too large or the client left before sending all of it. */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length) <= MAX_BODY_BYTES && chunks.push(c));
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('close', () => req.complete || resolve(undefined));
    req.on('error', () => resolve(undefined));
  });
}

/** One response in progress; dropped from `open` as soon as it ends. */
interface Live {
  rec: RecordedRequest;
  res: ServerResponse;
  plan: FaultPlan;
  ended: boolean; // nothing more may be written (finished, dropped, client gone, or server closing)
  cancel: (() => void) | undefined; // stops the pending pause and resumes the writer so it can exit
  release: () => void;
  // Background mode: the events go to `bg`, which outlives `res`; the client leaving ends nothing.
  bg?: BackgroundResponse;
  // `res` closing is no abort: it was dropped by a fault, or answered at once (background, not streamed).
  detached?: boolean;
}

/** Nothing more is written; wakes the writer so that it exits, and resolves the record's `closed`. */
function halt(live: Live): void {
  live.ended = true;
  live.release();
}

function pause(live: Live, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (live.ended) return resolve();
    const wake = () => {
      live.cancel = undefined;
      resolve();
    };
    if (ms === Infinity) {
      live.cancel = wake;
    } else if (ms <= 0) {
      const t = setImmediate(wake);
      live.cancel = () => (clearImmediate(t), wake());
    } else {
      const t = setTimeout(wake, ms);
      live.cancel = () => (clearTimeout(t), wake());
    }
  });
}

/** Writes one SSE event, optionally byte-sliced into separate socket writes; false once the response is over. */
async function send(live: Live, data: string, counts = false): Promise<boolean> {
  if (live.ended) return false;
  // A background response stores the event whole, so a stream attaching mid-slices gets it from the store.
  const to = live.bg ? live.bg.record(data, counts) : [live.res];
  const step = live.plan.writeChunkBytes ?? 0;
  if (step <= 0) return to.forEach((res) => res.write(data)), true;
  const bytes = Buffer.from(data);
  for (let i = 0; i < bytes.length; i += step) {
    if (i > 0) await pause(live, 0);
    if (live.ended) return false;
    for (const res of to) if (!res.destroyed) res.write(bytes.subarray(i, i + step));
  }
  return true;
}

/** An SSE comment: not an event, so a background response does not store it. */
async function keepAlive(live: Live): Promise<void> {
  if (live.bg) return live.ended ? undefined : live.bg.comment(': keep-alive\n\n');
  await send(live, ': keep-alive\n\n');
}

/** The response is complete as far as the plan lets it be; `failed` when a fault left it without a terminal event. */
function end(live: Live, failed = false): void {
  if (live.ended) return;
  live.ended = true;
  live.rec.finished = true;
  if (!live.bg) return void live.res.end();
  live.bg.finish(failed);
  live.release(); // its connection may be long gone, so that closing cannot be what releases it
}

export class LocalModel {
  readonly requests: RecordedRequest[] = [];
  /** The size of each recorded request's body, which the records are bounded by. */
  private readonly bodyBytes = new WeakMap<object, number>();
  /** The POSTs to /tools/<name>, in arrival order. */
  readonly toolCalls: ToolRequest[] = [];
  /** Bodies of `POST /v1/moderations`, in arrival order. */
  readonly moderations: unknown[] = [];
  private readonly server: Server;
  private readonly open = new Set<Live>();
  private readonly backgrounds = new BackgroundRegistry();
  private readonly host: string;
  private readonly port: number;
  private readonly tokenDelayMs: number;
  private readonly model: string;
  private planFor: LocalModelOptions['plan'];
  private nextId = 1;
  private callCount = 0; // numbers the model's own tool calls, call_demo_1, call_demo_2…
  private readonly connections = new WeakMap<Socket, number>();
  private connectionCount = 0;

  constructor(opts: LocalModelOptions = {}) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.tokenDelayMs = opts.tokenDelayMs ?? 25;
    this.model = opts.model ?? 'relay-demo-1';
    this.planFor = opts.plan;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (res.headersSent) return void res.destroy();
        const dialect = ROUTES.get(pathOf(req))?.[1] ?? chat;
        sendJson(res, 500, dialect.errorBody(500, 'internal error', 'internal'));
      });
    });
    this.server.on('connection', (socket) => this.connections.set(socket, ++this.connectionCount));
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const live of this.open) halt(live);
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** TCP connections open now, clients' idle keep-alive ones included. */
  openConnections(): Promise<number> {
    return new Promise((resolve, reject) => this.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  }

  /** `http://host:port`: the Anthropic SDK's baseURL, as it appends `/v1/messages` itself. */
  get origin(): string {
    const addr = this.server.address() as AddressInfo | null;
    if (!addr) throw new Error('LocalModel is not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}`;
  }

  /** `http://host:port/v1`: the OpenAI SDK's baseURL. */
  get baseURL(): string {
    return `${this.origin}/v1`;
  }

  /** Where the endpoint of the DEMO_TOOLS entry `name` answers on this server. */
  toolURL(name: string): string {
    const tool = DEMO_TOOLS.find((t) => t.name === name);
    if (!tool) throw new Error(`No demo tool named ${name}`);
    return `${this.origin}${tool.path}`;
  }

  setPlan(plan: LocalModelOptions['plan']): void {
    this.planFor = plan;
  }

  /** Responses in progress, background ones included until their generation is over. */
  get openRequests(): number {
    return this.open.size;
  }

  /** Where the background response `id` stands, or undefined for an id the model does not keep. */
  background(id: string): BackgroundState | undefined {
    return this.backgrounds.get(id)?.state();
  }

  /** The id of the background response created last (also on its record as `responseId`). */
  lastBackgroundId(): string | undefined {
    return this.backgrounds.lastId;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req);
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: [{ id: this.model, object: 'model' }] });
    }
    if (req.method === 'POST' && path.startsWith('/tools/')) return this.tool(req, res, path.slice('/tools/'.length));
    if (req.method === 'POST' && path === '/v1/moderations') return this.moderation(req, res);
    if (serveBackground(this.backgrounds, req, res)) return;
    const route = req.method === 'POST' ? ROUTES.get(path) : undefined;
    if (!route) return sendJson(res, 404, openaiError(404, `Unknown route ${req.method} ${path}`, 'not_found'));
    const [name, dialect] = route;
    const raw = await readBody(req);
    if (raw === undefined) return sendJson(res, 413, dialect.errorBody(413, 'Request body too large or incomplete', 'bad_body'));
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendJson(res, 400, dialect.errorBody(400, 'Request body is not valid JSON', 'invalid_json'));
    }
    const request = dialect.parse(body);
    if (!('encode' in request)) return sendJson(res, 400, dialect.errorBody(400, request.message, request.code));

    let release!: () => void;
    const rec: RecordedRequest = {
      id: this.nextId++,
      connection: this.connections.get(req.socket) ?? 0,
      dialect: name,
      body,
      messages: request.messages,
      tools: request.tools,
      headers: { ...req.headers },
      tokensSent: 0,
      finished: false,
      aborted: false,
      closed: new Promise<void>((resolve) => (release = resolve)),
    };
    this.bodyBytes.set(rec, raw.length);
    record(this.requests, rec, (r) => this.bodyBytes.get(r) ?? 0);

    const live: Live = { rec, res, plan: {}, ended: false, cancel: undefined, release: () => {} };
    live.release = () => {
      live.cancel?.();
      this.open.delete(live);
      release();
    };
    this.open.add(live);
    res.on('close', () => {
      if (!live.ended && !live.detached) rec.aborted = true;
      if (!live.bg) halt(live); // a background one is generated on the model's own schedule, whoever listens
    });

    try {
      live.plan = this.planFor?.(rec) ?? {};
    } catch {
      live.plan = { httpStatus: 500 }; // a broken plan must not take the server down; the caller sees a 500
    }
    const plan = live.plan;
    if (plan.httpStatus !== undefined && plan.httpStatus !== 200) {
      const status = plan.httpStatus;
      const headers: Record<string, string> = status === 429 ? { 'retry-after': '0', 'x-should-retry': 'false' } : {};
      live.ended = rec.finished = true;
      return sendJson(res, status, dialect.errorBody(status, `Injected HTTP ${status}`), headers);
    }

    // Laid over a copy: the faults still read the plan the test gave.
    const said = { ...plan, ...toolUse(rec.messages, rec.tools, plan, () => `call_demo_${++this.callCount}`) };
    const encoded = request.encode(planReply(rec.id, this.model, rec.messages, said, request.budget), plan);
    if (name === 'responses' && wantsBackground(body)) this.startBackground(live, encoded);
    if (plan.replay === undefined && !request.stream && live.bg) {
      // Answered at once with the queued response; it runs on for polls and re-attaches.
      live.detached = true;
      sendJson(res, 200, live.bg.object());
      return this.stream(live, encoded);
    }
    if (plan.replay === undefined && !request.stream) {
      live.ended = rec.finished = true;
      return sendJson(res, 200, encoded.json);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    live.bg?.listen(res);
    // A replay keeps the dialect's error and malformed events, so faults can still cut it.
    await this.stream(live, plan.replay === undefined ? encoded : { ...encoded, body: replayBody(plan.replay), tail: [] });
  }

  /** Makes `live` a background response, kept (and bounded) in the registry under the id its events carry. */
  private startBackground(live: Live, encoded: Encoded): void {
    const id = (live.rec.responseId = responseId(live.rec.id));
    // A cancel halts the writer where it is: nothing more is generated or counted.
    live.bg = new BackgroundResponse(id, encoded.json as Record<string, unknown>, live.plan.refuseReattach === true, () => halt(live));
    this.backgrounds.add(live.bg);
  }

  private async moderation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw === undefined ? undefined : JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    // Bounded by bytes too: a check may carry images.
    if (isRecord(body)) this.bodyBytes.set(body, raw?.length ?? 0);
    record(this.moderations, body, (b) => (isRecord(b) ? (this.bodyBytes.get(b) ?? 0) : 0));
    const { status, json } = moderate(body);
    sendJson(res, status, json);
  }

  private async tool(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const raw = await readBody(req);
    if (raw === undefined) return sendJson(res, 413, { error: 'request body too large or incomplete' });
    const { request, answer } = callTool(name, raw.toString('utf8'));
    record(this.toolCalls, request);
    sendJson(res, answer.status, answer.body);
  }

  private async stream(live: Live, script: Encoded): Promise<void> {
    const { plan, rec } = live;
    const delay = plan.tokenDelayMs ?? this.tokenDelayMs;
    if (plan.firstTokenDelayMs) await pause(live, plan.firstTokenDelayMs);
    for (const [i, ev] of script.body.entries()) {
      if (ev.counts && (await this.fault(live, script, i))) return;
      if (i > 0) await pause(live, delay);
      if (!(await send(live, ev.sse, ev.counts))) return;
      if (ev.counts) rec.tokensSent++;
    }
    if (await this.fault(live, script, script.body.length)) return;
    for (const sse of script.tail) if (!(await send(live, sse))) return;
    if (plan.stallAfterFinish) await pause(live, Infinity);
    if (plan.holdAfterDoneMs) await pause(live, plan.holdAfterDoneMs);
    end(live);
  }

  /** Applies the plan's fault if its token threshold has been reached, `sent` body events in; true when the response must stop. */
  private async fault(live: Live, script: Encoded, sent: number): Promise<boolean> {
    const { plan, rec } = live;
    const reached = (n: number | undefined) => n !== undefined && rec.tokensSent >= n;
    if (reached(plan.errorAfterTokens)) {
      await send(live, script.error(sent));
      end(live);
    } else if (reached(plan.malformedAfterTokens)) {
      await send(live, script.malformed);
      end(live, true);
    } else if (reached(plan.dropAfterTokens) && !live.detached) {
      // Let the corked last token reach the kernel first, or the destroy would discard it.
      await pause(live, 0);
      // Not the client's doing, so the close handler must not count it as an abort.
      live.detached = true;
      // A background response only loses its connections, once; it runs on for a re-attach.
      if (live.bg) return live.bg.drop(), false;
      live.ended = true;
      live.res.socket?.destroy();
    } else if (reached(plan.stallAfterTokens)) {
      const every = plan.keepAliveMs && plan.keepAliveMs > 0 ? plan.keepAliveMs : Infinity;
      while (!live.ended) {
        await pause(live, every);
        await keepAlive(live);
      }
    } else {
      return false;
    }
    return true;
  }
}
