// Reading an upstream response body as SSE events, in every dialect: from the
// socket's own 'data' events (no promise per read), bounded, and careful that
// events which arrived before a broken connection are still handed on.
import type { IncomingMessage } from 'node:http';
import { SseDecoder, type SseEvent } from './sse.js';

/** What an event handler returns to stop reading: the stream said it is over. */
export const DONE = Symbol('done');

/** How long a body may take to end after its last event before its connection is given up rather than reused. */
const DRAIN_AFTER_DONE_MS = 1_000;

/** Characters of events decoded ahead while one is being written, before the body is paused. */
const QUEUED_WHILE_WAITING_CHARS = 64 * 1024;

/**
 * Hands a body's SSE events to `onEvent` in order, from the socket's own
 * 'data' events (no promise per read), pausing the body while `onEvent`'s
 * promise is pending. Resolves at the end of the body, at DONE, or
 * quietly when `signal` aborts; rejects on a broken body or a bad event.
 */
export function readEvents(
  body: IncomingMessage,
  maxEventChars: number,
  onBytes: () => void,
  signal: AbortSignal,
  onEvent: (event: SseEvent) => typeof DONE | void | Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const decoder = new SseDecoder(maxEventChars);
    let queue: SseEvent[] = [];
    let next = 0;
    let waiting = false;
    let ended = false;
    let finished = false;
    /** The body broke while an event was being written: the error waits until the queue is drained. */
    let broken: unknown;
    /** Characters of the events in the queue not yet handled. */
    let queuedChars = 0;
    const finish = (err?: unknown, done = false) => {
      if (finished) return;
      finished = true;
      body.off('data', onData).off('end', onEnd).off('error', fail).off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      // Whatever the body does from here on is no longer this reply's concern.
      body.on('error', () => undefined);
      if (ended) {
        // Read to its end: the connection goes back to the agent for the next reply.
      } else if (done) {
        // The upstream said it is done and normally ends the body right after: let it, so the connection is reused.
        const giveUp = setTimeout(() => body.destroy(), DRAIN_AFTER_DONE_MS);
        body.once('close', () => clearTimeout(giveUp)).resume();
      } else {
        // Cancelled or failed: destroying the body closes the connection, and the upstream sees it.
        body.destroy();
      }
      if (err === undefined) resolve();
      else reject(err);
    };
    const drain = () => {
      try {
        while (next < queue.length && !finished && !signal.aborted) {
          const event = queue[next++]!;
          queuedChars -= event.data.length;
          const result = onEvent(event);
          if (result === DONE) return finish(undefined, true);
          if (result) {
            waiting = true;
            throttle();
            result.then(() => {
              waiting = false;
              if (finished) return;
              if (broken === undefined) body.resume();
              drain();
            }, finish);
            return;
          }
        }
      } catch (err) {
        return finish(err);
      }
      if (finished) return;
      queue = [];
      next = 0;
      if (broken !== undefined) finish(broken);
      else if (signal.aborted || ended) finish();
    };
    /**
     * While an event is being written, the body is read on until a bound is
     * queued, then paused: what already arrived is decoded, so a connection
     * that breaks meanwhile loses none of it.
     */
    const throttle = () => {
      if (queuedChars > QUEUED_WHILE_WAITING_CHARS) body.pause();
    };
    const take = (events: SseEvent[]) => {
      if (events.length === 0) return;
      if (next === queue.length) {
        queue = events;
        next = 0;
      } else {
        queue.push(...events);
      }
      for (const e of events) queuedChars += e.data.length;
      if (!waiting) drain();
      else throttle();
    };
    const onData = (chunk: string) => {
      onBytes();
      try {
        take(decoder.push(chunk));
      } catch (err) {
        finish(err);
      }
    };
    const onEnd = () => {
      ended = true;
      try {
        take(decoder.end());
      } catch (err) {
        return finish(err);
      }
      if (!waiting) drain();
    };
    /** A broken body: events that arrived before the break are still this reply's, and go out first. */
    const fail = (err: unknown) => {
      if (!waiting) return finish(err);
      broken ??= err;
    };
    const onClose = () => {
      if (!ended) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    const onAbort = () => finish();
    if (signal.aborted) return finish();
    signal.addEventListener('abort', onAbort, { once: true });
    body.setEncoding('utf8');
    body.on('data', onData).on('end', onEnd).on('error', fail).on('close', onClose);
  });
}
