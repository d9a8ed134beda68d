// What one socket has yet to send. A reader that keeps up gets every frame
// straight through. Above the high-water mark of buffered bytes, frames wait
// here and consecutive reply.delta frames of one reply merge into one (same
// text, the seq of the last merged event), so a slow reader costs fewer,
// larger frames instead of memory. Past the hard limit the socket is closed
// (4009) and the client resumes from its last seq.
import type { ConversationEventOf } from '../../shared/protocol.js';
import { mergeDeltas, serialize, size as deltaSize } from '../rooms/fanout.js';

export type DeltaEvent = ConversationEventOf<'reply.delta'>;

/** The part of a WebSocket an outbox writes to. */
export interface Wire {
  readonly bufferedAmount: number;
  send(data: string): void;
}

export interface OutboxLimits {
  highWaterBytes: number;
  hardLimitBytes: number;
}

interface Held {
  json: string | undefined;
  delta: DeltaEvent | undefined;
  conversationId: string | undefined;
}

/** How far back a delta looks for an earlier one of its reply to merge into. */
const MERGE_LOOKBACK = 32;
const FLUSH_POLL_MS = 20;

export class Outbox {
  private held: Held[] = [];
  private heldChars = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Deltas merged away since the socket opened. */
  merged = 0;
  /** Events held here: what the client is behind by. */
  lag = 0;

  constructor(
    private readonly wire: Wire,
    private readonly limits: OutboxLimits,
    private readonly on: { overflow(): void; merged?(): void },
  ) {}

  send(json: string, delta?: DeltaEvent, conversationId = delta?.conversationId): void {
    if (this.closed) return;
    if (this.held.length === 0 && this.wire.bufferedAmount < this.limits.highWaterBytes) {
      this.wire.send(json);
      return;
    }
    if (!(delta && this.mergeIntoHeld(delta))) {
      const h = { json, delta, conversationId };
      this.held.push(h);
      this.heldChars += size(h);
    }
    this.lag++;
    if (this.heldChars + this.wire.bufferedAmount > this.limits.hardLimitBytes) {
      this.close();
      this.on.overflow();
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), FLUSH_POLL_MS);
  }

  private mergeIntoHeld(delta: DeltaEvent): boolean {
    const stop = Math.max(0, this.held.length - MERGE_LOOKBACK);
    for (let i = this.held.length - 1; i >= stop; i--) {
      const h = this.held[i]!;
      if (h.conversationId !== delta.conversationId) continue;
      // Only the latest held frame of this conversation may absorb it, or seq order would break.
      const merged = h.delta && mergeDeltas(h.delta, delta);
      if (!merged) return false;
      this.heldChars -= size(h);
      h.delta = merged;
      h.json = undefined;
      this.heldChars += size(h);
      this.merged++;
      this.on.merged?.();
      return true;
    }
    return false;
  }

  private flush(): void {
    this.timer = undefined;
    if (this.closed) return;
    while (this.held.length && this.wire.bufferedAmount < this.limits.highWaterBytes) {
      const h = this.held.shift()!;
      this.heldChars -= size(h);
      this.wire.send(h.json ?? serialize(h.delta!));
    }
    if (this.held.length) this.timer = setTimeout(() => this.flush(), FLUSH_POLL_MS);
    else this.lag = 0;
  }

  /** Above the high-water mark: a bulk sender (a replay) should wait for drained(). */
  get backlogged(): boolean {
    return this.held.length > 0 || this.wire.bufferedAmount >= this.limits.highWaterBytes;
  }

  /** Resolves once the reader has caught up below the high-water mark (or the outbox closed). */
  async drained(): Promise<void> {
    while (this.backlogged && !this.closed) await new Promise((r) => setTimeout(r, FLUSH_POLL_MS));
  }

  /** Frames waiting here (not counting what the socket itself buffers). */
  get waiting(): number {
    return this.held.length;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = [];
    this.heldChars = 0;
    this.lag = 0;
  }
}

/** Characters a held frame stands for: its JSON, or a merged delta's text. */
function size(h: Held): number {
  if (h.json !== undefined) return h.json.length;
  return 128 + (h.delta ? deltaSize(h.delta) : 0);
}
