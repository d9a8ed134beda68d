// Shared by every bench process: one clock, the token stamp format, a
// mergeable latency histogram, and the messages the orchestrator and the load
// generators exchange over IPC.

/**
 * Milliseconds on CLOCK_MONOTONIC (process.hrtime). Every process on the
 * machine reads the same clock, so an upstream stamp and a client's receive
 * time can be subtracted across processes.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The text of one upstream token: its send time. Relays forward it verbatim. */
export function tokenText(): string {
  return ` t=${now().toFixed(3)}`;
}

/**
 * Calls `fn` with every ` t=<ms>` stamp in `s` (a raw frame, or a delta's
 * text); returns how many it found. Merged deltas carry several stamps.
 */
export function forEachStamp(s: string, fn: (t: number) => void): number {
  let n = 0;
  let i = s.indexOf(' t=');
  while (i >= 0) {
    let j = i + 3;
    for (; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (!((c >= 48 && c <= 57) || c === 46)) break;
    }
    if (j > i + 3) {
      fn(Number(s.slice(i + 3, j)));
      n++;
    }
    i = s.indexOf(' t=', j);
  }
  return n;
}

export interface HistogramJson {
  buckets: Array<[number, number]>;
  count: number;
  sum: number;
  min: number;
  max: number;
}

const H_BASE = 0.001; // ms: smallest distinguished value
const H_LOG_STEP = Math.log(1.01); // 1 % wide buckets

/** A log-bucketed histogram (1 % resolution) that processes can merge. */
export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  record(v: number): void {
    const x = v < H_BASE ? H_BASE : v;
    const idx = Math.ceil(Math.log(x / H_BASE) / H_LOG_STEP);
    this.counts.set(idx, (this.counts.get(idx) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  merge(other: Histogram | HistogramJson): void {
    const buckets = other instanceof Histogram ? [...other.counts.entries()] : other.buckets;
    for (const [idx, c] of buckets) this.counts.set(idx, (this.counts.get(idx) ?? 0) + c);
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  /** The value at percentile p (0–100), within 1 %; undefined when empty. */
  percentile(p: number): number | undefined {
    if (this.count === 0) return undefined;
    const target = Math.max(1, Math.ceil((p / 100) * this.count));
    const keys = [...this.counts.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const k of keys) {
      seen += this.counts.get(k)!;
      if (seen >= target) return Math.min(this.max, Math.max(this.min, H_BASE * Math.exp(k * H_LOG_STEP)));
    }
    return this.max;
  }

  mean(): number | undefined {
    return this.count ? this.sum / this.count : undefined;
  }

  toJSON(): HistogramJson {
    return { buckets: [...this.counts.entries()], count: this.count, sum: this.sum, min: this.min, max: this.max };
  }

  static from(json: HistogramJson): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }
}

// ------------------------------------------------------------ orchestrator ⇄ load generator

/**
 * Every contender, in the order a repetition runs them. `relay` keeps its state in memory, `relay-sqlite` in SQLite;
 * `relay-moderated` is `relay` with buffered moderation (every reply held back until a window check covering it passed).
 */
export const CONTENDERS = ['floor', 'socketio', 'relay', 'relay-sqlite', 'relay-moderated'] as const;
export type Contender = (typeof CONTENDERS)[number];

export function isContender(c: string): c is Contender {
  return (CONTENDERS as readonly string[]).includes(c);
}

/** The relay's own code (server/main.ts), whichever store it runs on and with moderation or without: same process, same protocol. */
export function isRelay(c: string): c is 'relay' | 'relay-sqlite' | 'relay-moderated' {
  return c === 'relay' || c === 'relay-sqlite' || c === 'relay-moderated';
}

/** The contenders spoken to in plain WebSocket frames. */
export type WsContender = 'floor' | 'relay';

/** The frame that asks a plain-WebSocket contender for a reply of `maxTokens` tokens. */
export function sendFrame(target: WsContender, room: string, text: string, maxTokens: number): string {
  return JSON.stringify(
    target === 'floor' ? { type: 'send', room, text, maxTokens } : { type: 'send', conversationId: room, text, options: { maxTokens } },
  );
}
export type Target = Contender | 'direct';

export interface RoomSpec {
  id: string;
  /** Position among all rooms of the trial, for the start ramp. */
  index: number;
  /** Receivers including the sender. */
  members: number;
}

export interface TrialSpec {
  trialId: string;
  target: Target;
  /** ws:// URL of the contender, or the upstream's base URL for `direct`. */
  url: string;
  rooms: RoomSpec[];
  totalRooms: number;
  tokens: number;
  rampMs: number;
  deadlineMs: number;
  /** One extra socket joined to these rooms (of any load generator), not measured. */
  slowRooms?: string[];
  /** When (ms after t0) that socket stops reading (ws pause()); never if absent. */
  slowPauseAtMs?: number;
  /**
   * Also record latency in one or two windows (ms after t0, by receive time):
   * A = [aFrom, aTo), B = [bFrom, bTo). The slow-consumer test compares them;
   * the other trials use A alone, for steady state.
   */
  split?: { aFrom: number; aTo: number; bFrom?: number; bTo?: number };
  /** Ask the upstream to pad every token with this many bytes of text (prompt directive `[pad=N]`). */
  tokenPad?: number;
}

export interface TrialResult {
  loadgen: number;
  latency: HistogramJson;
  ttft: HistogramJson;
  latencyA?: HistogramJson;
  latencyB?: HistogramJson;
  tokens: number;
  frames: number;
  expectedTokens: number;
  roomsDone: number;
  roomsTimedOut: number;
  errors: number;
  closedEarly: number;
  firstError?: string;
  startedAt: number;
  endedAt: number;
  slowFrames: number;
  slowTokens: number;
  slowFramesAfter: number;
  slowTokensAfter: number;
  /** Characters of those frames (socket.io: the delta text plus its packet framing, approximately). */
  slowBytesAfter: number;
  /** How the server closed the slow socket, if it did. */
  slowCloseCode?: number;
}

export type ToLoadgen =
  | { cmd: 'prepare'; spec: TrialSpec }
  | { cmd: 'go'; t0: number }
  | { cmd: 'idle'; target: Contender; url: string; total: number }
  | { cmd: 'reset' }
  | { cmd: 'exit' };

export type FromLoadgen =
  | { ev: 'ready'; loadgen: number }
  | { ev: 'prepared'; loadgen: number; clients: number; errors: number; firstError?: string }
  | { ev: 'result'; result: TrialResult }
  | { ev: 'idle'; loadgen: number; open: number; errors: number; firstError?: string }
  | { ev: 'reset'; loadgen: number };

/** bench/probe.mjs's answer to `sourcemaps`: source-map payloads by module URL. */
export interface ProbeMaps {
  probe: number;
  maps: Record<string, unknown>;
}

/** What bench/probe.mjs answers about the process it was preloaded into. */
export interface ProbeReply {
  probe: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Event-loop utilization since the last `mark`. */
  elu: number | undefined;
  gc: boolean;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function median(xs: Array<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
