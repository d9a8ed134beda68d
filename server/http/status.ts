// The HTTP status of each protocol error code, for every HTTP adapter that
// answers an error before (or instead of) a stream, in one table.
import type { ErrorCode } from '../../shared/codes.js';

export const HTTP_STATUS: Record<ErrorCode | 'unauthorized', number> = {
  bad_frame: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  busy: 429,
  rate_limited: 429,
  quota_exceeded: 429,
  overloaded: 503,
  upstream_error: 502,
  upstream_timeout: 504,
  upstream_rate_limited: 429,
  unsupported_attachment: 415,
  moderated: 400,
  internal: 500,
};
