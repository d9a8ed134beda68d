// One assistant reply as the app sees it: the text so far, an async iterator
// of the pieces as they arrive, and a promise of how it ended.
import type { ServerFrameOf } from '../shared/protocol.js';
import { AsyncQueue } from './emitter.js';

type ReplyEnd = ServerFrameOf<'reply.end'>;

/** How a reply ended, with all of its text. */
export type ReplyResult = Pick<ReplyEnd, 'replyId' | 'finishReason' | 'usage' | 'toolCalls' | 'error'> & { text: string };

/** Pieces one iterator may have waiting before they are coalesced into one. */
const ITERATOR_PIECES = 256;

export class Reply implements AsyncIterable<string> {
  private textValue = '';
  private reasoningValue = '';
  private modelValue: string | undefined;
  private startedValue = false;
  private resultValue: ReplyResult | undefined;
  private readonly iterators = new Set<AsyncQueue<string>>();
  private resolveResult!: (r: ReplyResult) => void;
  /** Always resolves (never rejects): a failure is a result with finishReason "error". */
  readonly result: Promise<ReplyResult>;

  constructor(
    readonly id: string,
    readonly conversationId: string,
  ) {
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get text(): string {
    return this.textValue;
  }
  get reasoning(): string {
    return this.reasoningValue;
  }
  get model(): string | undefined {
    return this.modelValue;
  }
  /** reply.start has been seen (or a snapshot showed it streaming). */
  get started(): boolean {
    return this.startedValue;
  }
  get done(): boolean {
    return this.resultValue !== undefined;
  }
  get finished(): ReplyResult | undefined {
    return this.resultValue;
  }

  /** @internal */
  start(model: string | undefined): void {
    this.startedValue = true;
    if (model !== undefined) this.modelValue = model;
  }

  /** @internal */
  append(text: string | undefined, reasoning?: string): void {
    if (this.done) return;
    this.startedValue = true;
    if (reasoning) this.reasoningValue += reasoning;
    if (!text) return;
    this.textValue += text;
    for (const it of this.iterators) it.mergeLast((last) => last + text, text);
  }

  /**
   * @internal A snapshot knows the reply's full text so far. Ours is a prefix of
   * it (events are never reordered), so only the missing tail is new.
   */
  catchUp(fullText: string): void {
    if (fullText.length > this.textValue.length && fullText.startsWith(this.textValue)) {
      this.append(fullText.slice(this.textValue.length));
    }
  }

  /** @internal */
  finish(end: Omit<ReplyResult, 'text' | 'replyId'>, fullText?: string): void {
    if (this.done) return;
    if (fullText !== undefined) this.catchUp(fullText);
    this.resultValue = { replyId: this.id, text: this.textValue, ...end };
    for (const it of this.iterators) it.end();
    this.iterators.clear();
    this.resolveResult(this.resultValue);
  }

  /** Text pieces from the start of the reply (what arrived before iteration is yielded first, in one piece). */
  [Symbol.asyncIterator](): AsyncIterableIterator<string> {
    const queue: AsyncQueue<string> = new AsyncQueue(ITERATOR_PIECES, () => this.iterators.delete(queue));
    if (this.textValue) queue.push(this.textValue);
    if (this.done) queue.end();
    else this.iterators.add(queue);
    return queue;
  }
}
