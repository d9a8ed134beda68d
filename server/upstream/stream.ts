// One upstream call in any dialect, start to end: the request (the SDK's,
// with its retries before the first byte), the body read as SSE events under
// an idle watchdog, and each event's pieces handed on in order.
import { RelayError, upstreamFailure } from '../errors.js';
import type { Dialect, UpstreamCall } from './dialect.js';
import { nodeBody, responseOrAbort } from './http-fetch.js';
import type { Completion, Piece, UpstreamCursor } from './pieces.js';

/** Takes each piece in order; `cursor`: where a background response stands once this piece is read. */
export type OnPiece = (piece: Piece, cursor?: UpstreamCursor) => void | Promise<void>;
import { UpstreamError } from './pieces.js';
import { DONE, readEvents } from './read-events.js';

export interface StreamLimits {
  idleTimeoutMs: number;
  /** An SSE event longer than this is cut off with an error. */
  maxEventChars: number;
}

/** Why the idle watchdog ended a stream that had already said how it finished. */
const FINISHED = Symbol('finished');

/**
 * Stream one call. `onPiece` is awaited for every piece, in order. Resolves
 * with what the stream reported; rejects with an UpstreamError. When `signal`
 * aborts, resolves quietly with what arrived so far: the caller knows why it
 * aborted.
 */
export async function streamCall(
  dialect: Dialect,
  call: UpstreamCall,
  limits: StreamLimits,
  signal: AbortSignal,
  onPiece: OnPiece,
): Promise<Completion> {
  // A second controller so the idle watchdog can abort without touching the caller's signal.
  const inner = new AbortController();
  const forward = () => inner.abort(signal.reason);
  signal.addEventListener('abort', forward, { once: true });
  // Aborted before the call (a cancel while the context was read): no request goes out at all.
  if (signal.aborted) forward();
  const reader = dialect.reader();
  const onIdle = () =>
    inner.abort(reader.finished ? FINISHED : new RelayError('upstream_timeout', `no data from the model API for ${limits.idleTimeoutMs} ms`));
  let idle: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(onIdle, limits.idleTimeoutMs);
  };
  let responded = false;
  try {
    const response = await responseOrAbort(dialect.request(call, inner.signal), inner.signal);
    responded = true;
    const body = nodeBody(response);
    if (!body) throw new RelayError('upstream_error', 'the model API answered without a body');
    touch();
    await readEvents(body, limits.maxEventChars, touch, inner.signal, (event) => {
      const read = reader.read(event);
      if (read === undefined || read === DONE) return read;
      // Only a background response can be re-attached to: no other call pays for keeping its cursor.
      const cursor = call.background ? reader.cursor : undefined;
      return isMany(read) ? handAll(read, onPiece, cursor) : onPiece(read, cursor);
    });
    if (inner.signal.aborted && !signal.aborted && inner.signal.reason !== FINISHED) throw inner.signal.reason;
    return reader.completion();
  } catch (err) {
    if (signal.aborted) return reader.completion();
    const raw: unknown = inner.signal.aborted ? inner.signal.reason : err;
    throw new UpstreamError(upstreamFailure(raw), reader.completion(), !responded, raw);
  } finally {
    clearTimeout(idle);
    signal.removeEventListener('abort', forward);
  }
}

function isMany(read: Piece | readonly Piece[]): read is readonly Piece[] {
  return Array.isArray(read);
}

/** Several pieces of one event, each awaited before the next. */
async function handAll(pieces: readonly Piece[], onPiece: OnPiece, cursor: UpstreamCursor | undefined): Promise<void> {
  for (const piece of pieces) await onPiece(piece, cursor);
}
