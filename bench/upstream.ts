// The benchmark's model: an OpenAI-compatible `POST /v1/chat/completions`
// that streams at a fixed pace (BENCH_PACE tokens/s per stream, default 30).
// Each content token is ` t=<ms>`, its send time on the shared monotonic
// clock, so a client can compute upstream-send → client-receive latency.
//
// Cheap on purpose: ONE ticker per pace interval writes the next chunk to
// every open stream (no timer per stream); a stream's first token goes out
// as soon as its request has been read. Honours `max_tokens` (default
// BENCH_DEFAULT_TOKENS) and `stream_options.include_usage`.
//
// Also `POST /v1/moderations` (OpenAI's shape), for the relay-moderated
// contender: never flagged, answered at once. It models a fast moderation
// service on loopback, so what the benchmark measures is the relay's side of
// moderation (holding pieces until a window passes, the checks' CPU), not a
// provider's round trip. Requests are counted (GET /stats).
//
//   PORT=0 HOST=127.0.0.1 npx tsx bench/upstream.ts   → {"listen":"http://127.0.0.1:PORT/v1"}
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { now, tokenText } from './common.js';
import { MODERATION_CATEGORIES } from '../demo/moderation.js';

const PACE = Number(process.env.BENCH_PACE ?? 30);
const DEFAULT_TOKENS = Number(process.env.BENCH_DEFAULT_TOKENS ?? 300);
const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 0);
const MODEL = 'bench-model';
const MAX_BODY = 1024 * 1024;
/**
 * A moderation window is the last 200 pieces of a reply and the end check the whole reply: with the slow-consumer
 * test's padded tokens (8 KB each in --quick) that is megabytes. Refusing them would make the relay's checks fail
 * (and fail open), which is not what the bench means to model.
 */
const MAX_MODERATION_BODY = 64 * 1024 * 1024;

interface Stream {
  res: ServerResponse;
  pad: string;
  prefix: string;
  suffix: string;
  remaining: number;
  sent: number;
  promptTokens: number;
  includeUsage: boolean;
  head: string;
}

/** One result, serialized once: every check gets the same clean verdict (none of OpenAI's categories flagged). */
const CLEAN_RESULT = JSON.stringify({
  flagged: false,
  categories: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, false])),
  category_scores: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, 0])),
});

const open = new Set<Stream>();
let nextId = 1;
let streamsServed = 0;
let tokensWritten = 0;
/** `POST /v1/moderations` answered, and how many of them checked reply text (it carries ` t=` stamps; a user message does not). */
let moderationRequests = 0;
let moderationReplyRequests = 0;
/** Ticker health since the last `GET /stats?reset=1`: how late ticks fired, how long one tick's writes took. */
let ticks = 0;
let tickLateMax = 0;
let tickWorkMax = 0;
let tickWorkSum = 0;
let ticksSkipped = 0;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, max = MAX_BODY): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => resolve(size > max ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

/** `n` bytes of plain words (JSON-safe, tokenizer-friendly), for bulky tokens. */
function padding(n: number): string {
  const words = ' lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor';
  return words.repeat(Math.ceil(n / words.length)).slice(0, n);
}

function writeToken(s: Stream): void {
  s.res.write(s.prefix + tokenText() + s.pad + s.suffix);
  s.sent++;
  s.remaining--;
  tokensWritten++;
}

function finish(s: Stream): void {
  open.delete(s);
  let tail = `data: ${s.head},"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n`;
  if (s.includeUsage) {
    const usage = { prompt_tokens: s.promptTokens, completion_tokens: s.sent, total_tokens: s.promptTokens + s.sent };
    tail += `data: ${s.head},"choices":[],"usage":${JSON.stringify(usage)}}\n\n`;
  }
  s.res.end(`${tail}data: [DONE]\n\n`);
}

/**
 * OpenAI's `POST /v1/moderations`: `{model, input}` → `{id, model, results}`, one result per string of an
 * array of strings, else one (a string, or text and images). Never flagged, answered as soon as the body is read.
 */
async function moderate(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await readBody(req, MAX_MODERATION_BODY);
  let body: { model?: unknown; input?: unknown };
  try {
    body = JSON.parse(raw ?? '') as typeof body;
  } catch {
    return json(res, 400, { error: { message: 'bad JSON', type: 'invalid_request_error' } });
  }
  if (body.input === undefined) return json(res, 400, { error: { message: 'input is required', type: 'invalid_request_error' } });
  moderationRequests++;
  if (raw!.includes(' t=')) moderationReplyRequests++;
  const n = Array.isArray(body.input) && body.input.every((x) => typeof x === 'string') ? Math.max(1, body.input.length) : 1;
  const model = typeof body.model === 'string' ? body.model : 'omni-moderation-latest';
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`{"id":"modr-bench${nextId++}","model":${JSON.stringify(model)},"results":[${Array(n).fill(CLEAN_RESULT).join(',')}]}`);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: MODEL, object: 'model' }] });
  if (req.method === 'GET' && path === '/stats') {
    const stats = { open: open.size, streamsServed, tokensWritten, moderationRequests, moderationReplyRequests, ticks, tickLateMax, tickWorkMax, tickWorkMean: ticks ? tickWorkSum / ticks : 0, ticksSkipped };
    if ((req.url ?? '').includes('reset=1')) ticks = tickLateMax = tickWorkMax = tickWorkSum = ticksSkipped = 0;
    return json(res, 200, stats);
  }
  if (req.method === 'POST' && path === '/v1/moderations') return moderate(req, res);
  if (req.method !== 'POST' || path !== '/v1/chat/completions') return json(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
  const raw = await readBody(req);
  let body: {
    stream?: boolean;
    max_tokens?: number;
    max_completion_tokens?: number;
    stream_options?: { include_usage?: boolean };
    messages?: unknown[];
  };
  try {
    body = JSON.parse(raw ?? '') as typeof body;
  } catch {
    return json(res, 400, { error: { message: 'bad JSON', type: 'invalid_request_error' } });
  }
  const tokens = Math.max(1, Math.floor(body.max_tokens ?? body.max_completion_tokens ?? DEFAULT_TOKENS));
  // A bench knob carried in the prompt, which every relay forwards: `[pad=N]` makes each token N bytes longer.
  const padMatch = /\[pad=(\d{1,6})\]/.exec(raw ?? '');
  const pad = padMatch ? padding(Number(padMatch[1])) : '';
  const promptTokens = Math.ceil((raw?.length ?? 0) / 4);
  const id = `chatcmpl-bench${nextId++}`;
  streamsServed++;
  const created = Math.floor(Date.now() / 1000);
  const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${MODEL}"`;
  if (body.stream !== true) {
    // Not what the bench uses, but answer like OpenAI anyway.
    const content = Array.from({ length: tokens }, () => tokenText() + pad).join('');
    return json(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'length' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens },
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const s: Stream = {
    res,
    pad,
    head,
    prefix: `data: ${head},"choices":[{"index":0,"delta":{"content":"`,
    suffix: `"},"finish_reason":null}]}\n\n`,
    remaining: tokens,
    sent: 0,
    promptTokens,
    includeUsage: body.stream_options?.include_usage === true,
  };
  res.on('close', () => open.delete(s));
  // The role chunk and the first token at once; the rest on the shared ticker.
  res.write(`data: ${head},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`);
  writeToken(s);
  if (s.remaining === 0) return finish(s);
  open.add(s);
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => res.destroy());
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.requestTimeout = 0;

// One self-correcting ticker for every stream.
const intervalMs = 1000 / PACE;
let due = now() + intervalMs;
function tick(): void {
  const start = now();
  if (open.size > 0) {
    ticks++;
    tickLateMax = Math.max(tickLateMax, start - due);
  }
  for (const s of open) {
    if (s.res.destroyed) {
      open.delete(s);
      continue;
    }
    writeToken(s);
    if (s.remaining === 0) finish(s);
  }
  const t = now();
  if (open.size > 0 || t - start > 0.5) {
    tickWorkMax = Math.max(tickWorkMax, t - start);
    tickWorkSum += t - start;
  }
  due += intervalMs;
  if (due < t) {
    // Fell behind a whole interval: skip rather than burst.
    ticksSkipped++;
    due = t + intervalMs;
  }
  setTimeout(tick, due - t);
}
setTimeout(tick, intervalMs);

server.listen(PORT, HOST, 4096, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `http://${HOST}:${port}/v1`, pace: PACE })}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
