// Background responses (OpenAI Responses API, `background: true`). The model
// generates them on its own schedule, whoever is listening, into a stored list
// of events, so that a client that lost its connection (or a relay node that
// took over from a lost one) can re-attach after the last sequence number it
// read, poll the response object, or cancel it. Pacing and faults stay in
// localmodel.ts; this file keeps the events, fans them out to the attached
// streams and answers GET /v1/responses/{id} and POST /v1/responses/{id}/cancel.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRecord } from '../server/upstream/pieces.js';

export type BackgroundStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

/** What a test reads of one background response through `LocalModel.background(id)`. */
export interface BackgroundState {
  status: BackgroundStatus;
  tokensGenerated: number; // reasoning/text pieces generated so far, listened to or not
  cancelRequests: number; // POST /v1/responses/{id}/cancel received, refused or not
  attaches: number; // GET /v1/responses/{id}?stream=true streams opened
}

/** Background responses kept at most; the oldest finished ones go first, a running one never. */
export const MAX_BACKGROUND = 1000;

const TERMINAL = new Set<BackgroundStatus>(['completed', 'incomplete', 'failed', 'cancelled']);
const STATUS_OF: Record<string, BackgroundStatus> = {
  'response.queued': 'queued',
  'response.in_progress': 'in_progress',
  'response.completed': 'completed',
  'response.incomplete': 'incomplete',
  'response.failed': 'failed',
};
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

/** OpenAI's 404 for a response it does not have. */
export const notFound = (id: string): object => ({
  error: { message: `Response with id '${id}' not found.`, type: 'invalid_request_error', param: null, code: null },
});

function json(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The JSON of an SSE event's data line, or undefined (a comment, `[DONE]`, a malformed event). */
function dataOf(sse: string): Record<string, unknown> | undefined {
  const line = sse.split('\n').find((l) => l.startsWith('data:'));
  try {
    const data: unknown = line === undefined ? undefined : JSON.parse(line.slice(5));
    return isRecord(data) ? data : undefined;
  } catch {
    return undefined;
  }
}

const writable = (res: ServerResponse): boolean => !res.destroyed && !res.writableEnded;

interface StoredEvent {
  seq: number; // its sequence_number; one past the previous event's when it has none (a malformed event)
  sse: string;
}

export class BackgroundResponse implements BackgroundState {
  status: BackgroundStatus = 'queued';
  tokensGenerated = 0;
  cancelRequests = 0;
  attaches = 0;
  /** No more events will come: the generation finished, failed or was cancelled. */
  ended = false;
  private readonly events: StoredEvent[] = [];
  private readonly streams = new Set<ServerResponse>();
  /** The response object of the latest event that carried one: what a poll sees while it runs. */
  private snapshot: Record<string, unknown>;

  /**
   * `final` is the completed response object (the non-streaming answer); `stop` halts the
   * generation at once, so that a cancel leaves nothing more to be generated or counted.
   */
  constructor(
    readonly id: string,
    private readonly final: Record<string, unknown>,
    readonly refuseReattach: boolean,
    private readonly stop: () => void,
  ) {
    this.snapshot = { ...final, status: 'queued', output: [], usage: null, incomplete_details: null };
  }

  /** Stores the events in `data` and returns the streams to write it to: those attached now. */
  record(data: string, counts: boolean): ServerResponse[] {
    for (const part of data.split('\n\n')) {
      if (part.trim() === '') continue;
      const sse = `${part}\n\n`;
      const ev = dataOf(sse);
      const seq = typeof ev?.sequence_number === 'number' ? ev.sequence_number : (this.events.at(-1)?.seq ?? -1) + 1;
      this.events.push({ seq, sse });
      const status = typeof ev?.type === 'string' ? STATUS_OF[ev.type] : undefined;
      if (status) this.status = status;
      if (isRecord(ev?.response)) this.snapshot = ev.response;
    }
    if (counts) this.tokensGenerated++;
    return [...this.streams].filter(writable);
  }

  /** Writes an SSE comment (a keep-alive) to the attached streams; it is no event, so it is not stored. */
  comment(text: string): void {
    for (const res of this.streams) if (writable(res)) res.write(text);
  }

  /** Writes every later event to `res` and after the stored ones, as they come, the live ones until the end. */
  listen(res: ServerResponse, after = -1): void {
    for (const ev of this.events) if (ev.seq > after) res.write(ev.sse);
    if (this.ended) return void res.end();
    this.streams.add(res);
    res.on('close', () => this.streams.delete(res));
  }

  /** Cuts every attached connection, as a network failure would; the generation runs on. */
  drop(): void {
    for (const res of this.streams) res.socket?.destroy();
    this.streams.clear();
  }

  /** The generation is over; `failed` when it ended on a fault that left no terminal event (a malformed one). */
  finish(failed = false): void {
    if (!TERMINAL.has(this.status)) this.status = failed ? 'failed' : (this.final.status as BackgroundStatus);
    this.close();
  }

  /** Stops the generation and ends the attached streams after what they already have; a finished response stays as it is. */
  cancel(): void {
    this.cancelRequests++;
    if (this.ended) return;
    if (!TERMINAL.has(this.status)) this.status = 'cancelled';
    this.stop();
    this.close();
  }

  /** The response object as a poll or a cancel answers it. */
  object(): object {
    const done = this.status === 'completed' || this.status === 'incomplete';
    return done ? { ...this.final, status: this.status } : { ...this.snapshot, status: this.status };
  }

  state(): BackgroundState {
    return { status: this.status, tokensGenerated: this.tokensGenerated, cancelRequests: this.cancelRequests, attaches: this.attaches };
  }

  private close(): void {
    this.ended = true;
    for (const res of this.streams) if (writable(res)) res.end();
    this.streams.clear();
  }
}

export class BackgroundRegistry {
  private readonly all = new Map<string, BackgroundResponse>(); // in creation order
  private latest: string | undefined;

  add(bg: BackgroundResponse): void {
    this.all.set(bg.id, bg);
    this.latest = bg.id;
    for (const [id, old] of this.all) {
      if (this.all.size <= MAX_BACKGROUND) break;
      if (old.ended) this.all.delete(id);
    }
  }

  get(id: string): BackgroundResponse | undefined {
    return this.all.get(id);
  }

  /** The id of the background response created last, even if it has since been dropped. */
  get lastId(): string | undefined {
    return this.latest;
  }

  get size(): number {
    return this.all.size;
  }
}

const PATH = /^\/v1\/responses\/([^/]+)(\/cancel)?$/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `starting_after` as a sequence number: -1 (everything) when absent, undefined when it is no integer. */
function startingAfter(url: URL): number | undefined {
  const raw = url.searchParams.get('starting_after');
  if (raw === null || raw === '') return -1;
  const n = Number(raw);
  return Number.isInteger(n) ? n : undefined;
}

/**
 * Answers GET /v1/responses/{id} (the object, or with `stream=true` its events after
 * `starting_after` then the live ones) and POST /v1/responses/{id}/cancel; false when
 * the request is neither, for the caller's own routes.
 */
export function serveBackground(registry: BackgroundRegistry, req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://localmodel');
  const match = PATH.exec(url.pathname);
  const cancel = match?.[2] !== undefined;
  if (!match?.[1] || req.method !== (cancel ? 'POST' : 'GET')) return false;
  const id = decode(match[1]);
  const bg = registry.get(id);
  // A refused re-attach looks like a response the provider no longer has.
  if (!bg || (!cancel && bg.refuseReattach)) return json(res, 404, notFound(id)), true;
  if (cancel) return bg.cancel(), json(res, 200, bg.object()), true;
  if (url.searchParams.get('stream') !== 'true') return json(res, 200, bg.object()), true;
  const after = startingAfter(url);
  if (after === undefined) {
    const message = "Invalid 'starting_after': expected an integer.";
    return json(res, 400, { error: { message, type: 'invalid_request_error', param: 'starting_after', code: 'invalid_value' } }), true;
  }
  bg.attaches++;
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  bg.listen(res, after);
  return true;
}
