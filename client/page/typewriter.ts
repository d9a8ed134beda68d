// Smooths a bursty stream of text into a steady reveal. Upstreams deliver
// tokens in clumps (network batching, proxies, tab throttling); painting each
// clump as it lands looks jerky. The reveal rate is a floor plus a share of the
// backlog, so it speeds up when behind and never lags more than MAX_LAG chars;
// finish() shows everything at once (reply.end, or Stop).

/** Characters per second when barely behind. */
const BASE_CPS = 45;
/** Extra speed per character of backlog: the backlog halves in about 0.1 s. */
const CATCH_UP = 7;
/** The reveal is never further behind than this. */
const MAX_LAG = 400;

export class Typewriter {
  private target: string;
  private position: number;
  private frame = 0;
  private last = 0;
  private finished = false;

  constructor(
    /** Paint `text` (a prefix of the reply); `final` once it is complete. */
    private readonly paint: (text: string, final: boolean) => void,
    initial = '',
  ) {
    // Text that had already arrived before we were created (a snapshot) is shown as is.
    this.target = initial;
    this.position = initial.length;
    paint(initial, false);
  }

  get done(): boolean {
    return this.finished;
  }

  append(text: string): void {
    if (this.finished || !text) return;
    this.target += text;
    if (!this.frame) {
      this.last = performance.now();
      this.frame = requestAnimationFrame(this.tick);
    }
  }

  /** Show all of it now. `full` replaces the text when the caller knows better (a snapshot). */
  finish(full?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (full !== undefined) this.target = full;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.position = this.target.length;
    this.paint(this.target, true);
  }

  /** Stop animating without painting (the element is going away). */
  dispose(): void {
    this.finished = true;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  private readonly tick = (now: number): void => {
    this.frame = 0;
    // A hidden tab gets no frames; cap the step so coming back is a fast catch-up, not a jump cut.
    const dt = Math.min(0.1, Math.max(0, (now - this.last) / 1000));
    this.last = now;
    const backlog = this.target.length - this.position;
    if (backlog <= 0) return;
    this.position = Math.max(this.position + (BASE_CPS + backlog * CATCH_UP) * dt, this.target.length - MAX_LAG);
    let end = Math.min(this.target.length, Math.floor(this.position));
    // Never cut a surrogate pair (emoji) in half.
    const code = this.target.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) end++;
    this.paint(this.target.slice(0, end), false);
    if (end < this.target.length) this.frame = requestAnimationFrame(this.tick);
  };
}
