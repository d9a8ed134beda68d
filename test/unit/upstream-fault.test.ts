// What the operator's log says about a failed upstream call (server/errors.ts):
// each SDK's error shape read the same way, key-like strings redacted, and
// which failures count against the upstream's health.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blamesUpstream, redactSecrets, RelayError, streamErrorEvent, upstreamFault } from '../../server/errors.js';

test('an OpenAI 401: status, type, code, request id, and the masked key in the message redacted', () => {
  const body = { message: 'Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com/account/api-keys.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' };
  const err = OpenAI.APIError.generate(401, { error: body }, undefined, new Headers({ 'x-request-id': 'req_123' }));
  assert.equal(upstreamFault(err), {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    requestId: 'req_123',
    message: 'Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys.',
  });
});

test('an Anthropic 529: the error object inside the body', () => {
  const err = Anthropic.APIError.generate(529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, undefined, new Headers({ 'request-id': 'req_a' }));
  assert.equal(upstreamFault(err), { status: 529, type: 'overloaded_error', requestId: 'req_a', message: 'Overloaded' });
});

test('a connection failure names its system code; a body that is not JSON is bounded', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  assert.equal(upstreamFault(new OpenAI.APIConnectionError({ cause: refused })), { message: 'Connection error.', cause: 'ECONNREFUSED' });
  const html = OpenAI.APIError.generate(502, undefined, `<html>${'x'.repeat(2000)}</html>`, new Headers());
  const fault = upstreamFault(html);
  assert.is(fault.status, 502);
  assert.ok(fault.message!.length <= 301);
});

test("an error event in a stream keeps the provider's type and message; the route's own key is redacted verbatim", () => {
  const event = streamErrorEvent({ type: 'server_error', code: 'boom', message: 'failed for key Zq7sGz8Kw' });
  assert.is(event.code, 'upstream_error');
  assert.equal(upstreamFault(event, ['Zq7sGz8Kw']), { type: 'server_error', code: 'boom', message: 'failed for key [redacted]' });
  assert.equal(upstreamFault(new RelayError('upstream_timeout', 'no data from the model API for 300 ms')), { message: 'no data from the model API for 300 ms' });
});

test('key-like strings are redacted; model names, URLs and words are kept', () => {
  const cases: Array<[string, string]> = [
    ['invalid x-api-key sk-ant-api03-AbCdEf123456-xyz', 'invalid x-api-key [redacted]'],
    ['bad token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig here', 'bad token [redacted] here'],
    ['Authorization: Bearer abc123', 'Authorization: [redacted]'],
    ['key 0123456789abcdef0123456789abcdef, hf_AbC123dEf, rk-live_x1y2z3, AIzaSyA1234567890abc', 'key [redacted], [redacted], [redacted], [redacted]'],
    ['The model `claude-3-5-sonnet-20241022` does not exist', 'The model `claude-3-5-sonnet-20241022` does not exist'],
    ['context_length_exceeded at http://127.0.0.1:11434/v1\n(line two)', 'context_length_exceeded at http://127.0.0.1:11434/v1 (line two)'],
  ];
  for (const [input, expected] of cases) assert.is(redactSecrets(input), expected);
});

test('a request refused for what it asked (400, 413, 422) does not count against the upstream; the rest do', () => {
  const status = (s: number) => OpenAI.APIError.generate(s, { error: { message: 'x' } }, undefined, new Headers());
  assert.not.ok(blamesUpstream(status(400)));
  assert.not.ok(blamesUpstream(status(422)));
  for (const s of [401, 403, 404, 429, 500, 503]) assert.ok(blamesUpstream(status(s)), `HTTP ${s}`);
  assert.ok(blamesUpstream(new OpenAI.APIConnectionError({})));
  assert.ok(blamesUpstream(new RelayError('upstream_timeout', 'silence')));
});

test.run();
