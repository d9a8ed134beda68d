// Moderation of one streaming reply on a sliding window: every `step` pieces
// of text (its text, reasoning and refusal), the text since the last check
// is checked together with the `window − step` pieces before it (windows
// overlap, so a phrase split across two steps is seen whole), and the whole
// reply once more at its end. One check in flight at a time: steps that come
// due meanwhile make the next check cover all of them. A piece counts as a
// token, as the quota meter counts them, so no tokenizer runs per piece.
//
// `optimistic`: pieces go out at once; a flagged check cuts the reply, and the
// text already out is redacted (reply.end says so). `buffered`: pieces are
// held until a check covering them has passed, so flagged text never goes out.
import type { Piece, UpstreamCursor } from '../upstream/pieces.js';
import type { Metrics } from '../metrics.js';
import type { CheckKind, ModerationInput, Verdict } from './api.js';

/** What the gate needs of the moderation API (ModerationApi, which applies the fail mode). */
export interface Checker {
  check(input: ModerationInput, kind: CheckKind): Promise<Verdict>;
}

export interface WindowSettings {
  mode: 'optimistic' | 'buffered';
  windowTokens: number;
  stepTokens: number;
}

export interface GateOutput {
  /** Write a piece as a reply.delta (with where its background response stood, if it is one). */
  emit(piece: Piece, cursor: UpstreamCursor | undefined): void | Promise<void>;
  /** A check flagged the reply: stop it (its upstream request too). */
  cut(verdict: Verdict): void;
}

interface Held {
  piece: Piece;
  cursor: UpstreamCursor | undefined;
  /** It has text that is moderated (not only a tool call). */
  moderated: boolean;
  /** Text pieces up to and including this one: a passed check that covers as many releases it. */
  position: number;
  at: number;
}

/** The text a piece adds to what is moderated. */
const moderated = (piece: Piece): string => (piece.text ?? '') + (piece.reasoning ?? '') + (piece.refusal ?? '');

export class ReplyGate {
  private text = '';
  /** Where each text piece starts in `text`. */
  private readonly starts: number[] = [];
  /** Text pieces covered by the last check that passed. */
  private checked = 0;
  private dueAt: number;
  private readonly held: Held[] = [];
  private inFlight: Promise<void> | undefined;
  /** A step came due while a check ran: check again when it returns. */
  private again = false;
  private cutVerdict: Verdict | undefined;
  /** Some text of this reply went out to members before a check flagged it. */
  private flaggedAfterEmit = false;
  private emitted = false;
  /** The reply has ended (or failed): nothing more goes out, whatever a late check says. */
  private closed = false;
  /** Every write of a released piece (buffered), so an end waits for them and their failures reach the reply. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: Checker,
    private readonly settings: WindowSettings,
    private readonly out: GateOutput,
    private readonly metrics: Metrics,
  ) {
    this.dueAt = settings.stepTokens;
  }

  /** The reply was flagged: the end says so, and whether members must drop text they have. */
  get verdict(): { verdict: Verdict; redact: boolean } | undefined {
    return this.cutVerdict && { verdict: this.cutVerdict, redact: this.flaggedAfterEmit };
  }

  push(piece: Piece, cursor?: UpstreamCursor): void | Promise<void> {
    if (this.cutVerdict || this.closed) return;
    const text = moderated(piece);
    if (text) this.addText(text);
    if (this.settings.mode === 'buffered') {
      this.held.push({ piece, cursor, moderated: text !== '', position: this.starts.length, at: performance.now() });
      return undefined;
    }
    if (text) this.emitted = true;
    // The caller awaits this write, as it would without moderation.
    return this.out.emit(piece, cursor);
  }

  /** The stream is over: check the whole reply, then let out what is still held. */
  async finish(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (!this.cutVerdict && this.text) this.judge(await this.api.check(this.text, 'whole'), this.starts.length, 'whole');
    else if (!this.cutVerdict) this.release(this.starts.length);
    this.closed = true;
    await this.writing;
  }

  /**
   * The reply ended otherwise (cancelled, failed): what is held is dropped, a
   * check in flight may still flag what went out (to be redacted), and
   * nothing goes out after this.
   */
  async close(): Promise<void> {
    this.held.length = 0;
    this.closed = true;
    while (this.inFlight) await this.inFlight;
    await this.writing.catch(() => undefined);
  }

  private addText(text: string): void {
    this.starts.push(this.text.length);
    this.text += text;
    if (this.starts.length < this.dueAt) return;
    this.dueAt = this.starts.length + this.settings.stepTokens;
    if (this.inFlight) this.again = true;
    else this.checkWindow();
  }

  /** Everything not yet passed, with the overlap before it. */
  private checkWindow(): void {
    const covers = this.starts.length;
    const from = Math.max(0, this.checked - (this.settings.windowTokens - this.settings.stepTokens));
    this.inFlight = this.api.check(this.text.slice(this.starts[from] ?? 0), 'window').then((verdict) => {
      this.inFlight = undefined;
      this.judge(verdict, covers, 'window');
      if (this.again && !this.cutVerdict && !this.closed) {
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
      if (!this.closed) this.out.cut(verdict);
      return;
    }
    this.checked = Math.max(this.checked, covers);
    if (!this.closed) this.release(covers);
  }

  private release(covers: number): void {
    let released = 0;
    const now = performance.now();
    for (const h of this.held) {
      if (h.position > covers) break;
      this.metrics.moderationHeld.observe((now - h.at) / 1000);
      if (h.moderated) this.emitted = true;
      this.track(this.out.emit(h.piece, h.cursor));
      released++;
    }
    this.held.splice(0, released);
  }

  /** A released write, chained so that a failure is never unhandled and an end waits for every one. */
  private track(written: void | Promise<void>): void {
    if (!written) return;
    this.writing = Promise.all([this.writing, written]).then(() => undefined);
    // Handled here as well: a failure waits for finish() or close() without counting as unhandled meanwhile.
    this.writing.catch(() => undefined);
  }
}
