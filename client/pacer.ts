// Outgoing frame pacing. The server drops frames past its per-socket rate
// (answering `rate_limited` without a ref, so the client cannot tell which
// frame was lost); a resume that re-joins many conversations and re-sends many
// messages at once would trip it. Staying under the server's default rate
// (burst 60, 20/s) keeps every frame.

export interface PacerOptions {
  burst: number;
  perSecond: number;
  /** Frames that may wait; past it push() refuses. */
  maxQueued: number;
}

export const defaultPacing: PacerOptions = { burst: 40, perSecond: 15, maxQueued: 2_048 };

export class Pacer<T> {
  private tokens: number;
  private last = Date.now();
  private readonly queue: T[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly write: (item: T) => void,
    private readonly options: PacerOptions = defaultPacing,
  ) {
    this.tokens = options.burst;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Write now if the budget allows and nothing waits; else queue. False if the queue is full. */
  push(item: T): boolean {
    if (this.queue.length === 0 && this.take()) {
      this.write(item);
      return true;
    }
    if (this.queue.length >= this.options.maxQueued) return false;
    this.queue.push(item);
    this.schedule();
    return true;
  }

  /** Write only if it can go right now (best-effort frames such as typing). */
  tryNow(item: T): boolean {
    if (this.queue.length > 0 || !this.take()) return false;
    this.write(item);
    return true;
  }

  /** Forget what waits (the socket is gone; resume rebuilds everything that matters). */
  clear(): T[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.queue.splice(0);
  }

  private take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((now - this.last) / 1000) * this.options.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.ceil(((1 - this.tokens) / this.options.perSecond) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.queue.length > 0 && this.take()) this.write(this.queue.shift()!);
      if (this.queue.length > 0) this.schedule();
    }, Math.max(wait, 1));
  }
}
