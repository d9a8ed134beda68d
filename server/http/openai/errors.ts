// Protocol error codes as OpenAI's HTTP API says them: `type` and `code` of
// `{error: {message, type, param, code}}`, in one table.
import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../../../shared/codes.js';
import { sendJson } from '../body.js';
import { HTTP_STATUS } from '../status.js';

const AS_OPENAI: Record<ErrorCode | 'unauthorized', { type: string; code: string | null }> = {
  bad_frame: { type: 'invalid_request_error', code: null },
  unauthorized: { type: 'invalid_request_error', code: 'invalid_api_key' },
  forbidden: { type: 'permission_error', code: null },
  not_found: { type: 'invalid_request_error', code: 'not_found' },
  busy: { type: 'requests', code: 'rate_limit_exceeded' },
  rate_limited: { type: 'requests', code: 'rate_limit_exceeded' },
  quota_exceeded: { type: 'insufficient_quota', code: 'insufficient_quota' },
  overloaded: { type: 'server_error', code: null },
  upstream_error: { type: 'server_error', code: 'upstream_error' },
  upstream_timeout: { type: 'server_error', code: 'upstream_timeout' },
  upstream_rate_limited: { type: 'requests', code: 'upstream_rate_limited' },
  unsupported_attachment: { type: 'invalid_request_error', code: 'unsupported_attachment' },
  moderated: { type: 'invalid_request_error', code: 'content_filter' },
  internal: { type: 'server_error', code: null },
};

export function openaiError(code: ErrorCode | 'unauthorized', message: string): { status: number; body: { error: { message: string; type: string; param: null; code: string | null } } } {
  const { type, code: openaiCode } = AS_OPENAI[code];
  return { status: HTTP_STATUS[code], body: { error: { message, type, param: null, code: openaiCode } } };
}

export function sendOpenAIError(res: ServerResponse, code: ErrorCode | 'unauthorized', message: string): void {
  const { status, body } = openaiError(code, message);
  sendJson(res, status, body);
}
