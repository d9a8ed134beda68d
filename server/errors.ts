// Errors that carry a protocol code, and the one place where failures of the
// upstream call (the SDKs' error classes, error events in a stream, broken
// streams) become codes.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { ErrorCode } from '../shared/codes.js';
import { SseOverflowError } from './upstream/sse.js';

export class RelayError extends Error {
  override name = 'RelayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A provider's own error kinds (OpenAI `code`/`type`, Anthropic `error.type`)
 * that mean "try later". Everything else, a provider's quota or billing
 * error (`insufficient_quota`) included, is `upstream_error`: the relay's
 * `quota_exceeded` is only ever the user's quota on this relay.
 */
const TRY_LATER = new Set(['rate_limit_exceeded', 'rate_limit_error', 'overloaded_error', 'server_is_overloaded', 'slow_down']);
const TIMED_OUT = new Set(['timeout_error', 'request_timeout']);

/** An error event inside a stream (its `error` object, as lenient JSON) as a code and a message safe to show. */
export function streamErrorEvent(error: Record<string, unknown> | undefined): RelayError {
  const kind = [error?.code, error?.type].find((v): v is string => typeof v === 'string' && /^[a-z0-9_.-]{1,64}$/.test(v));
  const code: ErrorCode = kind && TRY_LATER.has(kind) ? 'upstream_rate_limited' : kind && TIMED_OUT.has(kind) ? 'upstream_timeout' : 'upstream_error';
  return new RelayError(code, `the model API failed (error event in the stream${kind ? `: ${kind}` : ''})`);
}

type SdkApiError = InstanceType<typeof OpenAI.APIError> | InstanceType<typeof Anthropic.APIError>;

function isApiError(err: unknown): err is SdkApiError {
  return err instanceof OpenAI.APIError || err instanceof Anthropic.APIError;
}

function isConnectionTimeout(err: unknown): boolean {
  return err instanceof OpenAI.APIConnectionTimeoutError || err instanceof Anthropic.APIConnectionTimeoutError;
}

function isConnectionError(err: unknown): boolean {
  return err instanceof OpenAI.APIConnectionError || err instanceof Anthropic.APIConnectionError;
}

/** The provider's error kind an SDK error carries in its body, if any. */
function providerKind(err: SdkApiError): string | undefined {
  const body: unknown = err.error;
  if (typeof body !== 'object' || body === null) return undefined;
  const inner: unknown = 'error' in body ? body.error : body;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const kind = 'code' in inner && typeof inner.code === 'string' ? inner.code : 'type' in inner && typeof inner.type === 'string' ? inner.type : undefined;
  return kind;
}

/** Map anything the upstream call threw to a protocol code and a message safe to show a client. */
export function upstreamFailure(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  if (isConnectionTimeout(err)) return new RelayError('upstream_timeout', 'the model API did not answer in time');
  if (isConnectionError(err)) return new RelayError('upstream_error', 'could not reach the model API');
  if (isApiError(err)) {
    // A status means the HTTP request failed; none means an error event inside the stream.
    if (!err.status) return new RelayError('upstream_error', 'the model API failed (error event in the stream)');
    const kind = providerKind(err);
    if (kind === 'insufficient_quota') return new RelayError('upstream_error', `the model API refused: its account is out of quota (HTTP ${err.status})`);
    // 529 is Anthropic's "overloaded": like a 429, it asks to come back later.
    if (err.status === 429 || err.status === 529) return new RelayError('upstream_rate_limited', `the model API is rate limiting or overloaded (${err.status})`);
    return new RelayError('upstream_error', `the model API failed (HTTP ${err.status})`);
  }
  if (err instanceof SseOverflowError) return new RelayError('upstream_error', err.message);
  // A connection cut mid-body: a Node socket or stream error (ECONNRESET, ERR_STREAM_PREMATURE_CLOSE…), or undici's TypeError("terminated").
  if (err instanceof TypeError || isSystemError(err)) return new RelayError('upstream_error', 'the connection to the model API broke mid-stream');
  return new RelayError('internal', 'unexpected failure while streaming the reply');
}

/** A failure before any response that another upstream might not have: overload, a server error, no connection. */
export function worthAnotherUpstream(err: unknown): boolean {
  if (isConnectionError(err)) return true;
  return isApiError(err) && err.status !== undefined && (err.status === 429 || err.status >= 500);
}

/** Node's socket and stream errors carry a string `code`. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string';
}
