// Per-user limits that hold across all of a user's sockets and conversations.

/** Counts each user's replies in flight (running or queued) against a cap. */
export class ReplySlots {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly maxPerUser: number) {}

  tryAcquire(userId: string): boolean {
    const n = this.inFlight.get(userId) ?? 0;
    if (n >= this.maxPerUser) return false;
    this.inFlight.set(userId, n + 1);
    return true;
  }

  release(userId: string): void {
    const n = (this.inFlight.get(userId) ?? 0) - 1;
    if (n > 0) this.inFlight.set(userId, n);
    else this.inFlight.delete(userId);
  }

  /** Users with replies in flight (0 once everything has ended). */
  size(): number {
    return this.inFlight.size;
  }
}

/** Lets one event per key through per interval; drops the rest (typing indicators). */
export class Throttle {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  allow(key: string, now = Date.now()): boolean {
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}
