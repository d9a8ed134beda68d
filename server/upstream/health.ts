// How the upstream is doing, judged from the calls replies make (no probe
// traffic of its own): relay_upstream_up and the last success per model for
// the metrics, and for /readyz (READY_CHECK_UPSTREAM) whether the last
// replies' upstream calls all failed.
import type { Metrics } from '../metrics.js';

export interface HealthSettings {
  /** Replies in a row whose upstream calls all failed before the upstream counts as down. */
  failures: number;
  /**
   * How long after the last failure it stays down. A node a load balancer
   * took out of rotation gets no calls that could prove the upstream back, so
   * after this it lets traffic try again; another failure makes it down again.
   */
  retryMs: number;
}

export class UpstreamHealth {
  private failedInARow = 0;
  private lastFailureAt = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly settings: HealthSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** One call to one model's upstream: answered, or failed in a way that blames the upstream. */
  call(model: string, up: boolean): void {
    this.metrics.upstreamUp.set({ model }, up ? 1 : 0);
    if (up) this.metrics.upstreamLastSuccess.set({ model }, Math.floor(this.now() / 1000));
  }

  /** How a reply's calls ended, its fallbacks included: one that answered resets the count. */
  reply(up: boolean): void {
    if (up) {
      this.failedInARow = 0;
      return;
    }
    this.failedInARow++;
    this.lastFailureAt = this.now();
  }

  down(): boolean {
    return this.failedInARow >= this.settings.failures && this.now() - this.lastFailureAt < this.settings.retryMs;
  }
}
