// The error and close codes of wire protocol v1, in one place. The names are
// fixed by the contract (docs/protocol.md); test/codes.test.ts keeps this
// table and that document in step.

export const errorCodes = {
  bad_frame: 'Not JSON, unknown type, or schema violation; the socket stays open unless it keeps sending such frames',
  forbidden: 'The token does not allow this conversation',
  not_found: 'No such conversation or reply',
  busy: 'The reply queue of this conversation is full',
  rate_limited: 'Too many frames or replies; slow down',
  quota_exceeded: 'The token quota of this user is used up for now',
  overloaded: 'The server is at capacity; try later',
  upstream_error: 'The model API failed or sent a broken stream',
  upstream_timeout: 'The model API went silent for longer than the idle timeout',
  upstream_rate_limited: 'The model API answered 429',
  unsupported_attachment: 'The model cannot take an attachment of this type',
  moderated: 'Moderation flagged the message or the reply',
  internal: 'An unexpected server error',
} as const;

export type ErrorCode = keyof typeof errorCodes;
export const ERROR_CODES = Object.keys(errorCodes) as [ErrorCode, ...ErrorCode[]];

export const closeCodes = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  slowConsumer: 4009,
  unauthorized: 4401,
  helloTimeout: 4408,
  rateLimitAbuse: 4429,
} as const;

export type CloseCode = (typeof closeCodes)[keyof typeof closeCodes];

/**
 * Codes the client library gives a socket it closes itself (never sent by the
 * server): it stopped answering, its token could not be fetched, or the
 * handshake took too long. It reconnects after each.
 */
export const clientCloseCodes = {
  deadSocket: 4000,
  tokenFailed: 4001,
  handshakeTimeout: 4002,
} as const;

/** A client reconnects after every close code except 4401, which needs a new token first. */
export function shouldReconnect(code: number): boolean {
  return code !== closeCodes.unauthorized;
}
