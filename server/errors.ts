// Errors that carry a protocol code, and the one place where failures of the
// upstream call (openai SDK error classes, broken streams) become codes.
import OpenAI from 'openai';
import type { ErrorCode } from '../shared/codes.js';
import { SseOverflowError } from './reply/sse.js';

export class RelayError extends Error {
  override name = 'RelayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Map anything the upstream call threw to a protocol code and a message safe to show a client. */
export function upstreamFailure(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  if (err instanceof OpenAI.RateLimitError) return new RelayError('upstream_rate_limited', 'the model API is rate limiting (429)');
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new RelayError('upstream_timeout', 'the model API did not answer in time');
  if (err instanceof OpenAI.APIConnectionError) return new RelayError('upstream_error', 'could not reach the model API');
  if (err instanceof OpenAI.APIError) {
    // A status means the HTTP request failed; none means an error event inside the stream.
    const where = err.status ? `HTTP ${err.status}` : 'error event in the stream';
    return new RelayError('upstream_error', `the model API failed (${where})`);
  }
  if (err instanceof SseOverflowError) return new RelayError('upstream_error', err.message);
  // A connection cut mid-body: a Node socket or stream error (ECONNRESET, ERR_STREAM_PREMATURE_CLOSE…), or undici's TypeError("terminated").
  if (err instanceof TypeError || isSystemError(err)) return new RelayError('upstream_error', 'the connection to the model API broke mid-stream');
  return new RelayError('internal', 'unexpected failure while streaming the reply');
}

/** Node's socket and stream errors carry a string `code`. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string';
}
