// Protocol error codes as OpenAI's HTTP API says them: status, `type` and
// `code` of `{error: {message, type, param, code}}`, in one table.
import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../../../shared/codes.js';
import { sendJson } from '../body.js';

const AS_OPENAI: Record<ErrorCode | 'unauthorized', { status: number; type: string; code: string | null }> = {
  bad_frame: { status: 400, type: 'invalid_request_error', code: null },
  unauthorized: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  forbidden: { status: 403, type: 'permission_error', code: null },
  not_found: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  busy: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  rate_limited: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  quota_exceeded: { status: 429, type: 'insufficient_quota', code: 'insufficient_quota' },
  overloaded: { status: 503, type: 'server_error', code: null },
  upstream_error: { status: 502, type: 'server_error', code: 'upstream_error' },
  upstream_timeout: { status: 504, type: 'server_error', code: 'upstream_timeout' },
  upstream_rate_limited: { status: 429, type: 'requests', code: 'upstream_rate_limited' },
  internal: { status: 500, type: 'server_error', code: null },
};

export function openaiError(code: ErrorCode | 'unauthorized', message: string): { status: number; body: { error: { message: string; type: string; param: null; code: string | null } } } {
  const { status, type, code: openaiCode } = AS_OPENAI[code];
  return { status, body: { error: { message, type, param: null, code: openaiCode } } };
}

export function sendOpenAIError(res: ServerResponse, code: ErrorCode | 'unauthorized', message: string): void {
  const { status, body } = openaiError(code, message);
  sendJson(res, status, body);
}
