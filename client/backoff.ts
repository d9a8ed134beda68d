// Reconnect delays: capped exponential growth with jitter, so a fleet of
// clients dropped at once (deploy, server restart) does not return in a herd.

export interface BackoffOptions {
  /** Ceiling of the first delay. */
  initialMs: number;
  /** No delay exceeds this. */
  maxMs: number;
  /** Ceiling growth per attempt. */
  factor: number;
  /**
   * Share of the ceiling that is randomized: 1 is "full jitter" (uniform in
   * [0, ceiling]), 0 is no jitter (always the ceiling).
   */
  jitter: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 1 };

export class Backoff {
  private attemptCount = 0;
  readonly options: BackoffOptions;

  constructor(
    options: Partial<BackoffOptions> = {},
    private readonly random: () => number = Math.random,
  ) {
    const o = { ...defaultBackoff, ...options };
    if (!(o.initialMs >= 0 && o.maxMs >= o.initialMs && o.factor >= 1 && o.jitter >= 0 && o.jitter <= 1)) {
      throw new RangeError('backoff needs 0 <= initialMs <= maxMs, factor >= 1 and 0 <= jitter <= 1');
    }
    this.options = o;
  }

  /** How many delays have been handed out since the last reset. */
  get attempt(): number {
    return this.attemptCount;
  }

  /** The upper bound of the delay for a given attempt (0-based). */
  ceiling(attempt: number): number {
    const { initialMs, maxMs, factor } = this.options;
    // Math.pow overflows to Infinity long before attempt counts matter; min() keeps it finite.
    return Math.min(maxMs, initialMs * Math.pow(factor, attempt));
  }

  /**
   * The delay before the next attempt. `floor` (0..1) raises the lower bound to
   * that share of the ceiling: used after "overloaded" closes, where a
   * near-zero full-jitter draw would defeat the point of backing off.
   */
  next(floor = 0): number {
    const ceiling = this.ceiling(this.attemptCount++);
    const low = ceiling * Math.max(1 - this.options.jitter, Math.min(1, Math.max(0, floor)));
    return Math.round(low + (ceiling - low) * this.random());
  }

  reset(): void {
    this.attemptCount = 0;
  }
}
