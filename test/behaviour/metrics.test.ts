import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    plan: (req) => (req.messages.at(-1)!.content === 'stall' ? { text: 'a b c d', stallAfterTokens: 2 } : req.messages.at(-1)!.content === 'fail' ? { httpStatus: 429 } : { text: 'one two three' }),
  });
});
test.after(async () => {
  await stack.close();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${stack.relay.port}/metrics`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const values = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

test('GET /metrics counts what happened: frames, replies, cancels, resumes, errors, latencies', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'm1', text: 'hello' });
  const end = await c.next('reply.end');
  c.send({ type: 'send', conversationId: 'm2', text: 'stall' });
  await c.next('reply.delta', (d) => d.conversationId === 'm2');
  await c.next('reply.delta', (d) => d.conversationId === 'm2');
  c.send({ type: 'cancel', conversationId: 'm2' });
  await c.next('reply.end', (e) => e.conversationId === 'm2');
  c.send({ type: 'send', conversationId: 'm3', text: 'fail' });
  await c.next('reply.end', (e) => e.conversationId === 'm3');
  c.sendRaw('not json');
  await c.next('error');
  const other = await stack.connect();
  other.send({ type: 'join', conversationId: 'm1', since: end.seq - 2 });
  await other.next('joined');

  const m = await scrape();
  assert.is(m.get('relay_open_sockets'), 2);
  assert.is(m.get('relay_frames_in_total{type="send"}'), 3);
  assert.is(m.get('relay_frames_in_total{type="invalid"}'), 1);
  assert.ok(m.get('relay_bytes_in_total{type="send"}')! > 0);
  assert.ok(m.get('relay_frames_out_total{type="reply.delta"}')! >= 4);
  assert.ok(m.get('relay_bytes_out_total{type="reply.delta"}')! > 0);
  assert.is(m.get('relay_replies_total{finish_reason="stop"}'), 1);
  assert.is(m.get('relay_replies_total{finish_reason="cancelled"}'), 1);
  assert.is(m.get('relay_replies_total{finish_reason="error"}'), 1);
  assert.is(m.get('relay_upstream_errors_total{code="upstream_rate_limited"}'), 1);
  assert.is(m.get('relay_cancel_to_abort_seconds_count'), 1);
  assert.is(m.get('relay_time_to_first_token_seconds_count'), 2);
  assert.ok(m.get('relay_inter_token_seconds_count')! >= 2);
  assert.is(m.get('relay_reply_deltas_total'), 5);
  assert.is(m.get('relay_completion_tokens_total{source="upstream"}'), 3);
  assert.is(m.get('relay_resumes_total{outcome="replayed"}'), 1);
  assert.is(m.get('relay_active_replies'), 0);
  assert.is(m.get('relay_queued_replies'), 0);
  assert.is(m.get('relay_member_lag_seq_max'), 0);
  assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics too');
});

test('with METRICS_TOKEN, /metrics wants it as a bearer token', async () => {
  const guarded = await startStack({ env: { METRICS_TOKEN: 'scrape-me' } });
  const url = `http://127.0.0.1:${guarded.relay.port}/metrics`;
  assert.is((await fetch(url)).status, 401);
  assert.is((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.is((await fetch(url, { headers: { authorization: 'Bearer scrape-me' } })).status, 200);
  await guarded.close();
});

test('/readyz and /healthz answer 200 while serving', async () => {
  for (const path of ['/readyz', '/healthz']) assert.is((await fetch(`http://127.0.0.1:${stack.relay.port}${path}`)).status, 200);
});

test.run();
