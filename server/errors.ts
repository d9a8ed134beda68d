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
    /** What the provider said, for the operator's log (an error event inside a stream). */
    readonly fault?: UpstreamFault,
  ) {
    super(message);
  }
}

/**
 * Why an upstream call failed, as the operator's log shows it: the HTTP
 * status, the provider's own error type and code, its message (key-like
 * strings redacted, bounded), the request id to quote to the provider, and for
 * a connection that failed the system error code. Never the key, the prompt or
 * the reply: none of them is read from the error.
 */
export interface UpstreamFault {
  status?: number;
  type?: string;
  code?: string;
  message?: string;
  requestId?: string;
  /** A connection failure's system code: ECONNREFUSED, ENOTFOUND, ECONNRESET… */
  cause?: string;
}

/** Longest provider message logged: an HTML error page from a proxy is not worth more. */
const FAULT_MESSAGE_CHARS = 300;

/**
 * Key-like strings a provider message may carry (OpenAI's "Incorrect API key
 * provided: sk-proj-****abcd" shows part of the key): prefixed keys, bearer
 * credentials, and any long run of letters and digits.
 */
const SECRET_LIKE = [
  /\b(?:sk|rk|xai|gsk|hf)[-_][\w*-]{3,}/gi,
  /\bAIza[\w-]{10,}/g,
  /\bBearer\s+\S+/gi,
  /\beyJ[\w-]+\.[\w-]+\.[\w-]*/g,
  // Long enough not to be a model name ("claude-3-5-sonnet-20241022" stays readable).
  /(?<![\w+/=-])(?=[\w+/=-]*\d)(?=[\w+/=-]*[A-Za-z])[\w+/=-]{32,}/g,
];

/** `text` with key-like substrings (and each of `secrets` verbatim) replaced by [redacted], control characters flattened, bounded. */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join('[redacted]');
  for (const pattern of SECRET_LIKE) out = out.replace(pattern, '[redacted]');
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return out.length > FAULT_MESSAGE_CHARS ? `${out.slice(0, FAULT_MESSAGE_CHARS)}…` : out;
}

/** The provider's error object an SDK error carries (OpenAI: the body's `error`; Anthropic: the body, whose `error` holds it). */
function providerError(err: SdkApiError): Record<string, unknown> | undefined {
  const body: unknown = err.error;
  if (typeof body !== 'object' || body === null) return undefined;
  const inner: unknown = 'error' in body && typeof body.error === 'object' ? body.error : body;
  return typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined);

/** The system error code (ECONNREFUSED…) somewhere down an error's `cause` chain. */
function systemCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if ('code' in e && typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** What the operator's log says about anything an upstream call threw; `secrets` (the route's key) are redacted verbatim too. */
export function upstreamFault(err: unknown, secrets: readonly string[] = []): UpstreamFault {
  const fault: UpstreamFault = {};
  const message = (m: string | undefined) => {
    if (m) fault.message = redactSecrets(m, secrets);
  };
  if (err instanceof RelayError) {
    Object.assign(fault, err.fault);
    message(err.fault?.message ?? err.message);
    return fault;
  }
  if (isApiError(err)) {
    if (err.status) fault.status = err.status;
    const inner = isConnectionError(err) ? undefined : providerError(err);
    const type = text(inner?.type);
    const code = text(inner?.code);
    if (type) fault.type = type;
    if (code) fault.code = code;
    // Not a secret: the id a provider's support asks for (x-request-id / request-id).
    if (err.requestID && /^[\w.:-]{1,128}$/.test(err.requestID)) fault.requestId = err.requestID;
    message(text(inner?.message) ?? err.message);
  } else if (err instanceof Error) {
    message(err.message);
  }
  const cause = systemCode(err);
  if (cause) fault.cause = cause;
  return fault;
}

/**
 * Does this failure say the upstream is unwell, rather than that one request
 * was refused for what it asked (400, 413, 422: a context too long, a bad
 * option)? What /readyz and relay_upstream_up go by.
 */
export function blamesUpstream(err: unknown): boolean {
  if (isApiError(err) && err.status) return ![400, 413, 422].includes(err.status);
  return true;
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
  const fault: UpstreamFault = {};
  const type = text(error?.type);
  const providerCode = text(error?.code);
  if (type) fault.type = type;
  if (providerCode) fault.code = providerCode;
  // Redacted again with the route's key when it is logged (upstreamFault).
  if (text(error?.message)) fault.message = redactSecrets(text(error?.message)!);
  return new RelayError(code, `the model API failed (error event in the stream${kind ? `: ${kind}` : ''})`, fault);
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
  const inner = providerError(err);
  return typeof inner?.code === 'string' ? inner.code : typeof inner?.type === 'string' ? inner.type : undefined;
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
