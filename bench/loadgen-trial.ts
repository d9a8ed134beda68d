// What one load generator measures in a trial: per receiving socket, every
// token's upstream-send → receive latency (from the \` t=<ms>\` stamp in its
// text), time to first token from the sender's send, tokens and frames; sent
// to bench/run.ts as one result at the end.
import { forEachStamp, Histogram, now, type FromLoadgen, type RoomSpec, type TrialResult, type TrialSpec } from './common.js';
import type { Client } from './loadgen-clients.js';

export const LOADGEN = Number(process.env.LOADGEN_ID ?? 0);
const PROMPT = 'Benchmark: stream your tokens, please.';

export function tell(msg: FromLoadgen): void {
  process.send?.(msg);
}

export class Room {
  sentAt = 0;
  ended = 0;
  done = false;
  readonly receivers: Client[] = [];
  sender: Client | undefined;
  constructor(readonly spec: RoomSpec) {}
}

export class Trial {
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

