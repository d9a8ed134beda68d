// A built-in OpenAI-compatible streaming model on plain node:http. It lets
// `npm start` work without an API key, and it is the real HTTP upstream of the
// integration tests, which steer it per request through a FaultPlan.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { z } from 'zod';
import { countTokens } from '../server/reply/context.js';

/** Per-request behaviour. "After N tokens" means once N reasoning/content pieces have been written. */
export interface FaultPlan {
  text?: string; // reply to stream instead of the generated demo text
  tokenDelayMs?: number; // pause between events; overrides the server default
  firstTokenDelayMs?: number; // pause after the headers, before the first chunk
  httpStatus?: number; // answer with this status and an OpenAI-style error body (429 adds headers that stop SDK retries)
  stallAfterTokens?: number; // then write nothing more until the client goes away
  keepAliveMs?: number; // while stalled, write ": keep-alive" comments this often
  errorAfterTokens?: number; // then a `data: {"error":…}` event and end (no finish_reason, no [DONE])
  malformedAfterTokens?: number; // then a truncated JSON data line and end
  dropAfterTokens?: number; // then destroy the socket; recorded as neither finished nor aborted
  omitDone?: boolean; // end normally but without `data: [DONE]`
  holdAfterDoneMs?: number; // after `data: [DONE]`, keep the response open this long before ending it
  stallAfterFinish?: boolean; // after the finish chunk (and usage), no [DONE]: write nothing more until the client goes away
  omitFinishReason?: boolean; // no chunk carries finish_reason
  writeChunkBytes?: number; // split each event into socket writes of at most this many bytes, even mid-character
  replay?: string; // raw recorded SSE body sent event by event; each event other than [DONE] counts as a token
  reasoning?: string; // streamed as delta.reasoning_content before the content
  toolCalls?: Array<{ id: string; name: string; arguments: string }>; // streamed as delta.tool_calls, finish "tool_calls"
}

export interface RecordedRequest {
  id: number; // 1, 2, 3… in arrival order
  connection: number; // the TCP connection that carried it: 1, 2, 3… in the order they were opened
  body: unknown;
  messages: Array<{ role: string; content: string; name?: string }>; // content parts flattened to text
  headers: Record<string, string | string[] | undefined>;
  tokensSent: number; // reasoning/content pieces written so far
  finished: boolean; // the server completed the response itself
  aborted: boolean; // the client closed the connection first
  closed: Promise<void>; // resolves once the response is finished or its connection closed
}

export interface LocalModelOptions {
  host?: string; // default 127.0.0.1
  port?: number; // default 0 (ephemeral)
  tokenDelayMs?: number; // default 25, roughly a real model's 40 tokens/s
  model?: string; // default "relay-demo-1"
  plan?: (req: RecordedRequest) => FaultPlan | undefined;
}

const MAX_RECORDS = 1000;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const TOKEN_RE = /\s*[\p{L}\p{N}_']+|\s*[^\s\p{L}\p{N}_']/gu;

/** Word-ish pieces whose concatenation is exactly `text`. */
export function splitTokens(text: string): string[] {
  const pieces: string[] = text.match(TOKEN_RE) ?? [];
  // The regex cannot match trailing whitespace; keep it so nothing is lost.
  const rest = text.slice(pieces.join('').length);
  if (rest) pieces.push(rest);
  return pieces;
}

const TEMPLATES: string[] = [
  `I'm the relay's built-in demo model — there is no real language model behind this reply. Here is what just happened:

- The relay forwarded your message to a local, OpenAI-compatible server.
- That server is streaming this text back one token at a time.
- Each token crosses the WebSocket as soon as it arrives.

Set OPENAI_API_KEY and restart the relay to talk to a real model instead.`,
  `This answer comes from the built-in demo model, so I can't actually think about it — but I can show you how streaming feels. Every word you see arrived as its own chunk, paced like a real model at roughly forty tokens per second. Try stopping a reply halfway, or open a second tab in the same room and watch both update. When you want real answers, set OPENAI_API_KEY and restart the server; the relay will pass your messages to OpenAI.`,
  `Thanks for the message! I'm a stand-in that runs entirely on your machine — the relay's built-in demo model. A few things worth trying while you're here:

1. Send a long message and watch the **Markdown** render as it streams.
2. Cancel a reply mid-sentence; the upstream request stops too.
3. Reload the page and see the conversation come back.

Setting OPENAI_API_KEY relays everything to a real model. Until then, à bientôt from demo mode.`,
];

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  // Raw FNV is badly spread modulo small numbers (most prompts picked the same template); mix the bits.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** The deterministic demo reply to a prompt. */
export function demoReply(prompt: string): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  const quote = flat.length > 60 ? `${flat.slice(0, 57).trimEnd()}…` : flat;
  const intro = quote ? `You said: “${quote}”` : 'You sent an empty message.';
  return `${intro}\n\n${TEMPLATES[fnv1a(flat) % TEMPLATES.length]}`;
}

// What the model reads of a request: lenient, as an OpenAI-compatible server is.
const optionalNumber = z.number().nullish().catch(null);
const ChatRequest = z.object({
  messages: z.array(
    z.object({
      role: z.string().catch(''),
      // A string, or an array of parts of which only the text ones matter here.
      content: z
        .union([z.string(), z.array(z.object({ text: z.string().catch('') }).catch({ text: '' })).transform((parts) => parts.map((p) => p.text).join(''))])
        .nullish()
        .catch(''),
      name: z.string().optional().catch(undefined),
    }),
  ),
  stream: z.boolean().nullish().catch(false),
  stream_options: z.object({ include_usage: z.boolean().nullish().catch(false) }).nullish().catch(null),
  max_tokens: optionalNumber,
  max_completion_tokens: optionalNumber,
});
type ChatRequest = z.infer<typeof ChatRequest>;

function toMessages(body: ChatRequest): RecordedRequest['messages'] {
  return body.messages.map((m) => ({ role: m.role, content: m.content ?? '', ...(m.name !== undefined ? { name: m.name } : {}) }));
}

function promptTokens(messages: RecordedRequest['messages']): number {
  return messages.reduce((n, m) => n + countTokens(m.content) + 4, 0);
}

function errorBody(message: string, type: string, code: string) {
  return { error: { message, type, param: null, code } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

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
}

interface Script {
  head: { id: string; created: number; model: string };
  body: Array<{ sse: string; counts: boolean }>; // paced; fault checkpoints sit before counted events
  tail: string[]; // finish/usage/[DONE], written back to back
  message: object; // the non-streaming equivalent
  finish: string;
  usage: object;
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
async function send(live: Live, data: string): Promise<boolean> {
  if (live.ended) return false;
  const step = live.plan.writeChunkBytes ?? 0;
  if (step <= 0) return live.res.write(data), true;
  const bytes = Buffer.from(data);
  for (let i = 0; i < bytes.length; i += step) {
    if (i > 0) await pause(live, 0);
    if (live.ended) return false;
    live.res.write(bytes.subarray(i, i + step));
  }
  return true;
}

function end(live: Live): void {
  if (live.ended) return;
  live.ended = true;
  live.rec.finished = true;
  live.res.end();
}

export class LocalModel {
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly open = new Set<Live>();
  private readonly host: string;
  private readonly port: number;
  private readonly tokenDelayMs: number;
  private readonly model: string;
  private planFor: LocalModelOptions['plan'];
  private nextId = 1;
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
        if (!res.headersSent) sendJson(res, 500, errorBody('internal error', 'server_error', 'internal'));
        else res.destroy();
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
    for (const live of this.open) {
      live.ended = true;
      live.release();
    }
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

  get baseURL(): string {
    const addr = this.server.address() as AddressInfo | null;
    if (!addr) throw new Error('LocalModel is not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}/v1`;
  }

  setPlan(plan: LocalModelOptions['plan']): void {
    this.planFor = plan;
  }

  get openRequests(): number {
    return this.open.size;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: [{ id: this.model, object: 'model' }] });
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      return sendJson(res, 404, errorBody(`Unknown route ${req.method} ${path}`, 'invalid_request_error', 'not_found'));
    }
    const raw = await readBody(req);
    if (raw === undefined) return sendJson(res, 413, errorBody('Request body too large or incomplete', 'invalid_request_error', 'bad_body'));
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendJson(res, 400, errorBody('Request body is not valid JSON', 'invalid_request_error', 'invalid_json'));
    }
    const parsed = ChatRequest.safeParse(body);
    if (!parsed.success) return sendJson(res, 400, errorBody('`messages` must be an array', 'invalid_request_error', 'invalid_messages'));
    const request = parsed.data;

    let release!: () => void;
    const rec: RecordedRequest = {
      id: this.nextId++,
      connection: this.connections.get(req.socket) ?? 0,
      body,
      messages: toMessages(request),
      headers: { ...req.headers },
      tokensSent: 0,
      finished: false,
      aborted: false,
      closed: new Promise<void>((resolve) => (release = resolve)),
    };
    this.requests.push(rec);
    if (this.requests.length > MAX_RECORDS) this.requests.splice(0, this.requests.length - MAX_RECORDS);

    const live: Live = { rec, res, plan: {}, ended: false, cancel: undefined, release: () => {} };
    live.release = () => {
      live.cancel?.();
      this.open.delete(live);
      release();
    };
    this.open.add(live);
    res.on('close', () => {
      if (!live.ended) rec.aborted = true;
      live.ended = true;
      live.release();
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
      const [type, code] =
        status === 429 ? ['requests', 'rate_limit_exceeded'] : status >= 500 ? ['server_error', 'injected'] : ['invalid_request_error', 'injected'];
      live.ended = rec.finished = true;
      return sendJson(res, status, errorBody(`Injected HTTP ${status}`, type, code), headers);
    }

    const script = this.script(rec, request, plan);
    if (request.stream !== true) {
      live.ended = rec.finished = true;
      const { head, message, finish, usage } = script;
      return sendJson(res, 200, { ...head, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: finish }], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    await this.stream(live, script);
  }

  /** Everything the response will say, decided up front so faults only pick where to cut it. */
  private script(rec: RecordedRequest, request: ChatRequest, plan: FaultPlan): Script {
    const includeUsage = request.stream_options?.include_usage === true;
    // One id and timestamp for every chunk of a response, as OpenAI does.
    const head = { id: `chatcmpl-demo${rec.id}`, created: Math.floor(Date.now() / 1000), model: this.model };
    const event = (choices: unknown[], extra: object = {}) =>
      `data: ${JSON.stringify({ id: head.id, object: 'chat.completion.chunk', created: head.created, model: head.model, choices, ...extra })}\n\n`;
    const chunk = (delta: object, finish: string | null = null) => event([{ index: 0, delta, finish_reason: finish }]);

    if (plan.replay !== undefined) {
      const events = plan.replay.split('\n\n').filter((e) => e.trim() !== '');
      const body = events.map((e) => ({ sse: `${e}\n\n`, counts: e.trim() !== 'data: [DONE]' }));
      return { head, body, tail: [], message: {}, finish: 'stop', usage: {} };
    }
    const max = [request.max_completion_tokens, request.max_tokens].find((v): v is number => typeof v === 'number' && v > 0) ?? Infinity;
    const lastUser = [...rec.messages].reverse().find((m) => m.role === 'user');
    const text = plan.text ?? (plan.toolCalls ? '' : demoReply(lastUser?.content ?? ''));

    const allReasoning = splitTokens(plan.reasoning ?? '');
    const allContent = splitTokens(text);
    const reasoning = allReasoning.slice(0, max);
    const content = allContent.slice(0, Math.max(0, max - reasoning.length));
    const truncated = reasoning.length + content.length < allReasoning.length + allContent.length;
    const toolCalls = truncated ? [] : (plan.toolCalls ?? []);
    const body: Script['body'] = [{ sse: chunk({ role: 'assistant', content: '' }), counts: false }];
    for (const p of reasoning) body.push({ sse: chunk({ reasoning_content: p }), counts: true });
    for (const p of content) body.push({ sse: chunk({ content: p }), counts: true });
    let argPieces = 0;
    toolCalls.forEach((call, index) => {
      body.push({ sse: chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }), counts: false });
      for (const arg of splitTokens(call.arguments)) {
        argPieces++;
        body.push({ sse: chunk({ tool_calls: [{ index, function: { arguments: arg } }] }), counts: false });
      }
    });

    const finish = truncated ? 'length' : toolCalls.length ? 'tool_calls' : 'stop';
    const completion = reasoning.length + content.length + argPieces;
    const prompt = promptTokens(rec.messages);
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const tail: string[] = [];
    if (!plan.omitFinishReason) tail.push(chunk({}, finish));
    if (includeUsage) tail.push(event([], { usage }));
    if (!plan.omitDone && !plan.stallAfterFinish) tail.push('data: [DONE]\n\n');
    const message = {
      role: 'assistant',
      content: content.join(''),
      ...(reasoning.length ? { reasoning_content: reasoning.join('') } : {}),
      ...(toolCalls.length ? { tool_calls: toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
    };
    return { head, body, tail, message, finish, usage };
  }

  private async stream(live: Live, script: Script): Promise<void> {
    const { plan, rec } = live;
    const delay = plan.tokenDelayMs ?? this.tokenDelayMs;
    if (plan.firstTokenDelayMs) await pause(live, plan.firstTokenDelayMs);
    for (const [i, ev] of script.body.entries()) {
      if (ev.counts && (await this.fault(live))) return;
      if (i > 0) await pause(live, delay);
      if (!(await send(live, ev.sse))) return;
      if (ev.counts) rec.tokensSent++;
    }
    if (await this.fault(live)) return;
    for (const sse of script.tail) if (!(await send(live, sse))) return;
    if (plan.stallAfterFinish) await pause(live, Infinity);
    if (plan.holdAfterDoneMs) await pause(live, plan.holdAfterDoneMs);
    end(live);
  }

  /** Applies the plan's fault if its token threshold has been reached; true when the response must stop. */
  private async fault(live: Live): Promise<boolean> {
    const { plan, rec } = live;
    const reached = (n: number | undefined) => n !== undefined && rec.tokensSent >= n;
    if (reached(plan.errorAfterTokens)) {
      await send(live, `data: ${JSON.stringify({ error: { message: 'injected failure', type: 'server_error', code: 'injected' } })}\n\n`);
      end(live);
    } else if (reached(plan.malformedAfterTokens)) {
      await send(live, 'data: {"choices":[{"delta":{"content":\n\n');
      end(live);
    } else if (reached(plan.dropAfterTokens)) {
      // Let the corked last token reach the kernel first, or the destroy would discard it.
      await pause(live, 0);
      // Not the client's doing, so the close handler must not count it as an abort.
      live.ended = true;
      live.res.socket?.destroy();
    } else if (reached(plan.stallAfterTokens)) {
      const every = plan.keepAliveMs && plan.keepAliveMs > 0 ? plan.keepAliveMs : Infinity;
      while (!live.ended) {
        await pause(live, every);
        await send(live, ': keep-alive\n\n');
      }
    } else {
      return false;
    }
    return true;
  }
}
