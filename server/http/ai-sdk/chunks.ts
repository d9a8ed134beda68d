// One response stream of the AI SDK transport: the reply a request follows,
// as UIMessageChunks numbered from 0, contiguous as sent. A resume may ask to
// skip the chunks it already has (lastSequence).
import type { UIMessageChunk } from '../../../shared/ai-sdk.js';
import type { ServerFrameOf } from '../../../shared/protocol.js';
import type { FollowedReply } from '../../rooms/reply-follower.js';

const FINISH: Record<ServerFrameOf<'reply.end'>['finishReason'], Extract<UIMessageChunk, { type: 'finish' }>['finishReason']> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  content_filter: 'content-filter',
  cancelled: 'other',
  error: 'error',
};

export interface ChunkSink {
  chunk(sequence: number, chunk: UIMessageChunk): void;
  /** The stream is complete (`end`), or there was nothing to follow (`no-active`). */
  done(how: 'end' | 'no-active'): void;
}

export class ChunkStream implements FollowedReply {
  private sequence = 0;
  private text: string | undefined;
  private reasoning: string | undefined;

  constructor(
    private readonly sink: ChunkSink,
    /** Chunks up to this sequence were seen by the client already. */
    private readonly skipThrough = -1,
  ) {}

  private emit(chunk: UIMessageChunk): void {
    const sequence = this.sequence++;
    if (sequence > this.skipThrough) this.sink.chunk(sequence, chunk);
  }

  started(replyId: string, soFar?: string): void {
    this.emit({ type: 'start', messageId: replyId });
    this.emit({ type: 'start-step' });
    // A resume begins with what the reply had said before this stream joined it.
    if (soFar) this.textDelta(replyId, soFar);
  }

  delta(d: ServerFrameOf<'reply.delta'>): void {
    if (d.reasoning) {
      if (this.reasoning === undefined) this.emit({ type: 'reasoning-start', id: (this.reasoning = `reasoning-${d.replyId}`) });
      this.emit({ type: 'reasoning-delta', id: this.reasoning, delta: d.reasoning });
    }
    const text = (d.text ?? '') + (d.refusal ?? '');
    if (text) this.textDelta(d.replyId, text);
  }

  private textDelta(replyId: string, delta: string): void {
    if (this.text === undefined) this.emit({ type: 'text-start', id: (this.text = `text-${replyId}`) });
    this.emit({ type: 'text-delta', id: this.text, delta });
  }

  ended(end: ServerFrameOf<'reply.end'>): void {
    if (this.reasoning !== undefined) this.emit({ type: 'reasoning-end', id: this.reasoning });
    if (this.text !== undefined) this.emit({ type: 'text-end', id: this.text });
    this.emit({ type: 'finish-step' });
    if (end.error) this.emit({ type: 'error', errorText: end.error.message });
    if (end.finishReason === 'cancelled') this.emit({ type: 'abort', reason: 'cancelled' });
    this.emit({ type: 'finish', finishReason: FINISH[end.finishReason] });
    this.sink.done('end');
  }

  none(): void {
    this.sink.done('no-active');
  }
}
