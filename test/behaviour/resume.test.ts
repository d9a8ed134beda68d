import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerFrame } from '../../shared/protocol.js';
import { replyText, startStack, type Stack, type TestClient } from '../helpers.js';

const TEXT = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
let stack: Stack;
test.after.each(async () => {
  await stack.close();
});

/** Kill a client mid-conversation; return the events it had seen, in order. */
function crash(c: TestClient, conversationId: string) {
  c.kill();
  return c.events(conversationId);
}

/** Assert the combined view (before crash + after resume) has strictly increasing seq and the full text. */
function assertLossless(before: ServerFrame[], after: ServerFrame[], replyId: string) {
  const seqs = [...before, ...after].map((f) => ('seq' in f ? f.seq : -1));
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `no duplicate or out-of-order seq: ${seqs.join(',')}`);
  assert.is(replyText(before, replyId) + replyText(after, replyId), TEXT);
}

test('a client killed mid-reply resumes with since: nothing lost, nothing doubled', async () => {
  stack = await startStack({ tokenDelayMs: 5, plan: () => ({ text: TEXT }) });
  const watcher = await stack.connect();
  watcher.send({ type: 'join', conversationId: 'r1' });
  await watcher.next('joined');
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r1', text: 'go' });
  const start = await c.next('reply.start');
  for (let i = 0; i < 10; i++) await c.next('reply.delta');
  const before = crash(c, 'r1');
  const since = before.at(-1)!.seq;

  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'r1', since, ref: 'resume' });
  const joined = await back.next('joined');
  assert.is(joined.ref, 'resume');
  assert.is(joined.reset, undefined);
  await back.next('reply.end');
  const after = back.events('r1');
  assertLossless(before, after, start.replyId);
  // The resumed view ends exactly where a member who never left ends.
  await watcher.next('reply.end');
  assert.is(after.at(-1)!.seq, watcher.events('r1').at(-1)!.seq);
});

test('the same when the reply finished while the client was away', async () => {
  stack = await startStack({ tokenDelayMs: 2, plan: () => ({ text: TEXT }) });
  const watcher = await stack.connect();
  watcher.send({ type: 'join', conversationId: 'r2' });
  await watcher.next('joined');
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r2', text: 'go' });
  const start = await c.next('reply.start');
  for (let i = 0; i < 5; i++) await c.next('reply.delta');
  const before = crash(c, 'r2');
  await watcher.next('reply.end');

  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'r2', since: before.at(-1)!.seq });
  await back.next('joined');
  const end = await back.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assertLossless(before, back.events('r2'), start.replyId);
});

test('since at the head replays nothing and goes live', async () => {
  stack = await startStack({ plan: () => ({ text: 'short reply' }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r3', text: 'go' });
  await c.next('reply.end');
  const head = c.events('r3').at(-1)!.seq;
  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'r3', since: head });
  const joined = await back.next('joined');
  assert.is(joined.seq, head);
  assert.equal(joined.history, []);
  back.send({ type: 'send', conversationId: 'r3', text: 'again', reply: false });
  const m = await back.next('message');
  assert.is(m.seq, head + 1);
  assert.is(back.events('r3').length, 1);
});

test('a since older than the retained log answers reset with a fresh snapshot', async () => {
  stack = await startStack({ env: { EVENT_LOG_MAX: '16' }, plan: () => ({ text: TEXT }) });
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'r4', text: 'go' });
  const end = await c.next('reply.end');
  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'r4', since: 1 });
  const joined = await back.next('joined');
  assert.is(joined.reset, true);
  assert.is(joined.seq, end.seq);
  assert.is(joined.history.at(-1)!.text, TEXT);
  assert.is(joined.history.at(-2)!.text, 'go');
});

test('the retained log is bounded in bytes too: past it, a resume answers reset', async () => {
  stack = await startStack({ env: { EVENT_LOG_MAX_BYTES: '65536', MESSAGES_PER_MINUTE: '100' } });
  const c = await stack.connect();
  for (let i = 0; i < 12; i++) c.send({ type: 'send', conversationId: 'bytes', text: `${i} ${'x'.repeat(8000)}`, reply: false });
  await c.next('message', (m) => m.message.text.startsWith('11 '));
  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'bytes', since: 1 });
  const joined = await back.next('joined');
  assert.is(joined.reset, true);
  assert.is(joined.history.length, 12, 'the history itself is complete');
  // A recent since is still covered.
  const recent = await stack.connect();
  recent.send({ type: 'join', conversationId: 'bytes', since: 10 });
  assert.is((await recent.next('joined')).reset, undefined);
  assert.is((await recent.next('message')).seq, 11);
});

test('a since from beyond the head (a conversation the server forgot) answers reset', async () => {
  stack = await startStack();
  const c = await stack.connect();
  c.send({ type: 'join', conversationId: 'r5', since: 500 });
  const joined = await c.next('joined');
  assert.is(joined.reset, true);
  assert.is(joined.seq, 0);
});

test.run();
