// Moderation of one streaming reply on a sliding window: every `step` pieces
// of text, the last `window` pieces are checked (windows overlap, so a phrase
// split across two steps is seen whole), and the whole reply once more at its
// end. One check in flight at a time; steps that come due meanwhile are
// coalesced into one check of the newest window. A piece counts as a token,
// as the quota meter counts them, so no tokenizer runs per piece.
//
// `optimistic`: pieces go out at once; a flagged check cuts the reply, and the
// text already out is redacted (reply.end says so). `buffered`: pieces are
// held until a check covering them passes, so flagged text never goes out.
import type { Piece } from '../upstream/pieces.js';
import type { Metrics } from '../metrics.js';
import type { ModerationApi, Verdict } from './api.js';

export interface WindowSettings {
  mode: 'optimistic' | 'buffered';
  windowTokens: number;
  stepTokens: number;
}

export interface GateOutput {
  /** Write a piece as a reply.delta. */
  emit(piece: Piece): void | Promise<void>;
  /** A check flagged the reply: stop it (its upstream request too). */
  cut(verdict: Verdict): void;
}

interface Held {
  piece: Piece;
  /** Text pieces up to and including this one: a check that covers as many releases it. */
  position: number;
  at: number;
}

export class ReplyGate {
  /** The last `windowTokens` text pieces. */
  private readonly recent: string[] = [];
  private text = '';
  private pieces = 0;
  private dueAt: number;
  private readonly held: Held[] = [];
  private inFlight: Promise<void> | undefined;
  /** A step came due while a check ran: check the newest window when it returns. */
  private again = false;
  private cutVerdict: Verdict | undefined;
  /** Some text of this reply went out to members before a check flagged it. */
  private flaggedAfterEmit = false;
  private emitted = false;
  /** The last write, so an end waits for every piece to be written. */
  private writing: void | Promise<void> = undefined;

  constructor(
    private readonly api: ModerationApi,
    private readonly settings: WindowSettings,
    private readonly out: GateOutput,
    private readonly metrics: Metrics,
  ) {
    this.dueAt = settings.stepTokens;
  }

  /** The reply was cut: the end says `content_filter`, and whether members must drop text they have. */
  get verdict(): { verdict: Verdict; redact: boolean } | undefined {
    return this.cutVerdict && { verdict: this.cutVerdict, redact: this.flaggedAfterEmit };
  }

  push(piece: Piece): void | Promise<void> {
    if (this.cutVerdict) return;
    if (piece.text) this.addText(piece.text);
    if (this.settings.mode === 'optimistic') return this.write(piece);
    this.held.push({ piece, position: this.pieces, at: performance.now() });
    return undefined;
  }

  /** The stream is over: check the whole reply, then let out what is still held. */
  async finish(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.cutVerdict) return;
    if (this.text) this.judge(await this.api.check(this.text, 'whole'), this.pieces, 'whole');
    await this.writing;
  }

  private addText(text: string): void {
    this.text += text;
    this.pieces += 1;
    this.recent.push(text);
    if (this.recent.length > this.settings.windowTokens) this.recent.shift();
    if (this.pieces < this.dueAt) return;
    this.dueAt = this.pieces + this.settings.stepTokens;
    if (this.inFlight) this.again = true;
    else this.checkWindow();
  }

  private checkWindow(): void {
    const covers = this.pieces;
    this.inFlight = this.api.check(this.recent.join(''), 'window').then((verdict) => {
      this.inFlight = undefined;
      this.judge(verdict, covers, 'window');
      if (this.again && !this.cutVerdict) {
        this.again = false;
        this.checkWindow();
      }
    });
  }

  private judge(verdict: Verdict, covers: number, kind: 'window' | 'whole'): void {
    if (this.cutVerdict) return;
    if (verdict.flagged) {
      this.cutVerdict = verdict;
      // Buffered, a flagged window was never let out; a flagged whole reply may have been, in parts that passed alone.
      this.flaggedAfterEmit = this.emitted && (this.settings.mode === 'optimistic' || kind === 'whole');
      this.held.length = 0;
      this.out.cut(verdict);
      return;
    }
    let released = 0;
    const now = performance.now();
    for (const h of this.held) {
      if (h.position > covers) break;
      this.metrics.moderationHeld.observe((now - h.at) / 1000);
      this.write(h.piece);
      released++;
    }
    this.held.splice(0, released);
  }

  private write(piece: Piece): void | Promise<void> {
    if (piece.text) this.emitted = true;
    const written = this.out.emit(piece);
    if (written) this.writing = written;
    return written;
  }
}
