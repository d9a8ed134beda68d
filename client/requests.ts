// Client frames whose outcome a caller awaits. The protocol answers a cancel
// or leave only when it fails, so success is inferred from order: the server
// handles a socket's frames one at a time, and a pong to a ping sent right
// after the frame means the frame was handled without an error. Every other
// request is answered by a frame carrying its ref: `authed` an auth, `usage`
// a usage request, a `tool.result` event a tool result, the `reply.start` of
// its reply a regenerate, `conversations` a list, `invited` an invite.
import type { ServerFrame, ServerFrameOf } from '../shared/protocol.js';
import { SendError } from './errors.js';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/** The frame types that answer a request of ours by carrying its ref. */
export type AnswerType = 'authed' | 'usage' | 'tool.result' | 'reply.start' | 'conversations' | 'invited';

/** Requests one socket may have outstanding. */
const MAX_OUTSTANDING = 128;

export class Requests {
  /** By the ref of the frame; `pingRef` is the ping sent after it. */
  private readonly confirms = new Map<string, Waiter<void> & { pingRef: string }>();
  /** By the ref of the request: the type of frame that answers it. */
  private readonly answers = new Map<string, Waiter<ServerFrame> & { type: AnswerType }>();

  get full(): boolean {
    return this.confirms.size + this.answers.size >= MAX_OUTSTANDING;
  }

  confirm(ref: string, pingRef: string): Promise<void> {
    return new Promise((resolve, reject) => this.confirms.set(ref, { pingRef, resolve, reject }));
  }

  /** Resolves with the frame of `type` that carries `ref`. */
  answer<T extends AnswerType>(ref: string, type: T): Promise<ServerFrameOf<T>> {
    return new Promise((resolve, reject) => {
      const resolveAnswer = (frame: ServerFrame) => {
        if (isOf(frame, type)) resolve(frame);
      };
      this.answers.set(ref, { type, resolve: resolveAnswer, reject });
    });
  }

  pong(ref: string | undefined): void {
    if (ref === undefined) return;
    for (const [key, c] of this.confirms) {
      if (c.pingRef !== ref) continue;
      this.confirms.delete(key);
      return c.resolve();
    }
  }

  /** A frame that may answer one of ours: it does when it carries our ref and is of the awaited type (every other member sees events without one). */
  answered(frame: ServerFrame & { ref?: string | undefined }): void {
    const waiter = frame.ref === undefined ? undefined : this.answers.get(frame.ref);
    if (!waiter || waiter.type !== frame.type) return;
    this.answers.delete(frame.ref!);
    waiter.resolve(frame);
  }

  /** An error answering one of ours: true if it was (the caller's promise reports it). */
  error(frame: ServerFrameOf<'error'>): boolean {
    const ref = frame.ref;
    if (ref === undefined) return false;
    const waiter = this.confirms.get(ref) ?? this.answers.get(ref);
    if (!waiter) return false;
    this.confirms.delete(ref);
    this.answers.delete(ref);
    waiter.reject(new SendError(frame.message, frame.code));
    return true;
  }

  failAll(error: Error): void {
    const waiting = [...this.confirms.values(), ...this.answers.values()];
    this.confirms.clear();
    this.answers.clear();
    for (const w of waiting) w.reject(error);
  }
}

function isOf<T extends ServerFrame['type']>(frame: ServerFrame, type: T): frame is ServerFrameOf<T> {
  return frame.type === type;
}
