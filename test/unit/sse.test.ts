import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SseDecoder, SseOverflowError, type SseEvent } from '../../server/upstream/sse.js';

const bytes = (s: string) => new TextEncoder().encode(s);

/** Decode `body` delivered in pieces of `size` bytes. */
function decode(body: string, size: number, max = 1 << 20): SseEvent[] {
  const d = new SseDecoder(max);
  const all = bytes(body);
  const out: SseEvent[] = [];
  for (let i = 0; i < all.length; i += size) out.push(...d.push(all.subarray(i, i + size)));
  out.push(...d.end());
  return out;
}

const BODY =
  ': keep-alive\n\n' +
  'data: {"a":"日本語 😊"}\n\n' +
  'event: error\ndata: {"error":{}}\n\n' +
  'data: line one\ndata: line two\n\n' +
  'id: 7\nretry: 10\ndata:no-space\n\n' +
  'data: [DONE]\n\n';
const EXPECTED: SseEvent[] = [
  { event: '', data: '{"a":"日本語 😊"}' },
  { event: 'error', data: '{"error":{}}' },
  { event: '', data: 'line one\nline two' },
  { event: '', data: 'no-space' },
  { event: '', data: '[DONE]' },
];

test('events, comments, event names and multi-line data', () => {
  assert.equal(decode(BODY, 4096), EXPECTED);
});

test('the same events however the bytes are split, even mid-character', () => {
  for (const size of [1, 2, 3, 5, 7, 13]) assert.equal(decode(BODY, size), EXPECTED, `pieces of ${size}`);
});

test('CRLF and CR line endings, also split between reads', () => {
  const crlf = BODY.replace(/\n/g, '\r\n');
  const cr = BODY.replace(/\n/g, '\r');
  for (const size of [1, 2, 4096]) {
    assert.equal(decode(crlf, size), EXPECTED, `CRLF in pieces of ${size}`);
    assert.equal(decode(cr, size), EXPECTED, `CR in pieces of ${size}`);
  }
});

test('a body that ends without a blank line still yields its last event', () => {
  assert.equal(decode('data: last', 3), [{ event: '', data: 'last' }]);
});

test('an event over the limit throws instead of buffering', () => {
  const big = `data: ${'x'.repeat(5000)}\n\n`;
  assert.throws(() => decode(big, 100, 1000), (e: unknown) => e instanceof SseOverflowError);
  assert.throws(() => decode(big, 100_000, 1000), (e: unknown) => e instanceof SseOverflowError);
  // Many small events that add up to more than the limit are fine.
  assert.is(decode('data: 12345\n\n'.repeat(1000), 64, 1000).length, 1000);
});

test.run();
