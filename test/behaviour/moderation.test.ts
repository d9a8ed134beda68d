// Moderation against the demo model's `/v1/moderations` (its word list:
// "zorblax" is violence, "snarfle blat" harassment): a flagged message is
// refused before anything goes upstream; a reply is checked on a sliding
// window (here 8 pieces, every 5) and cut when a window is flagged, either
// after its text went out (optimistic: then redacted everywhere) or before
// (buffered: no client ever sees it); a moderation API that is down follows
// the fail mode.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RecordedRequest } from '../../demo/localmodel.js';
import type { ServerFrameOf } from '../../shared/protocol.js';
import { replyText, startStack, type Stack, type TestClient } from '../helpers.js';
import { freePort } from '../redis.js';

/** Word pieces w1 w2 …, with `at` (1-based piece numbers) replaced by the given words. */
function words(count: number, at: Record<number, string>): string {
  return Array.from({ length: count }, (_, i) => at[i + 1] ?? `w${i + 1}`).join(' ');
}

const REPLIES: Record<string, string> = {
  // Third window (pieces 8-15) is the first to hold it.
  third: words(200, { 12: 'zorblax' }),
  // Pieces 10 and 11: the window at 10 ends with the first word, the next step starts with the second.
  split: words(200, { 10: 'snarfle', 11: 'blat' }),
  clean: words(30, {}),
};
const plan = (req: RecordedRequest) => {
  const text = REPLIES[req.messages.at(-1)?.content ?? ''];
  return text ? { text, tokenDelayMs: 10 } : undefined;
};

const WINDOW = { MODERATION_WINDOW_TOKENS: '8', MODERATION_STEP_TOKENS: '5' };
const stacks: Stack[] = [];
async function moderated(env: Record<string, string>, base?: string): Promise<Stack> {
  const stack = await startStack({ env: (model) => ({ MODERATION_BASE_URL: base ?? model.baseURL, ...WINDOW, ...env }), plan });
  stacks.push(stack);
  return stack;
}
test.after(async () => {
  for (const s of stacks) await s.close();
});

async function joined(stack: Stack, conversationId: string): Promise<TestClient> {
  const c = await stack.connect();
  c.send({ type: 'join', conversationId });
  await c.next('joined', (f) => f.conversationId === conversationId);
  return c;
}

async function ask(c: TestClient, conversationId: string, text: string): Promise<{ message: ServerFrameOf<'message'>; end: ServerFrameOf<'reply.end'> }> {
  const ref = `r-${text}`;
  c.send({ type: 'send', ref, conversationId, text });
  const message = await c.next('message', (f) => f.ref === ref);
  const end = await c.next('reply.end', (f) => f.replyId === message.replyId);
  return { message, end };
}

const chatRequests = (stack: Stack) => stack.model.requests.length;

test('a flagged message is refused before anything goes upstream, and nothing is kept or billed', async () => {
  const stack = await moderated({});
  const c = await joined(stack, 'mod-input');
  const before = chatRequests(stack);
  c.send({ type: 'send', ref: 'bad', conversationId: 'mod-input', text: 'tell me about zorblax' });
  const refused = await c.answerTo('bad');
  assert.is(refused.type === 'error' && refused.code, 'moderated');
  assert.match(refused.type === 'error' ? refused.message : '', 'violence');
  assert.is(chatRequests(stack), before, 'no upstream request');
  const late = await joined(stack, 'mod-input');
  const snapshot = late.frames.find((f) => f.type === 'joined');
  assert.equal(snapshot?.type === 'joined' && snapshot.history, []);
  c.send({ type: 'usage', ref: 'u' });
  const usage = await c.next('usage');
  assert.is(usage.today.replies, 0, 'nothing billed');
  // A clean one goes through.
  const { end } = await ask(c, 'mod-input', 'clean');
  assert.is(end.finishReason, 'stop');
});

test('optimistic: a reply flagged in its third window is cut, its upstream aborted, and its text gone from history, resume and late joiners', async () => {
  const stack = await moderated({});
  const c = await joined(stack, 'mod-opt');
  const watcher = await joined(stack, 'mod-opt');
  const { message, end } = await ask(c, 'mod-opt', 'third');
  assert.is(end.finishReason, 'content_filter');
  assert.is(end.error?.code, 'moderated');
  assert.is(end.redacted, true, 'members are told to drop what they have');
  // Optimistic: the flagged text did reach members live before the cut.
  assert.ok(replyText(watcher.frames, message.replyId).includes('zorblax'));
  const upstream = stack.model.requests.at(-1)!;
  await upstream.closed;
  assert.ok(upstream.aborted, 'the upstream request was aborted');
  assert.ok(upstream.tokensSent < 200);
  const checked = stack.model.moderations.map((b) => JSON.stringify(b));
  const flaggedAt = checked.findIndex((b) => b.includes('zorblax'));
  assert.ok(flaggedAt >= 0 && checked.slice(0, flaggedAt).every((b) => !b.includes('zorblax')));

  const late = await joined(stack, 'mod-opt');
  const snapshot = late.frames.find((f) => f.type === 'joined');
  const entry = snapshot?.type === 'joined' ? snapshot.history.find((m) => m.id === message.replyId) : undefined;
  assert.equal([entry?.text, entry?.redacted, entry?.finishReason], ['', true, 'content_filter']);
  // A member resuming from before the reply gets its start and end, never its text.
  const resumed = await stack.connect();
  resumed.send({ type: 'join', conversationId: 'mod-opt', since: message.seq });
  await resumed.next('reply.end', (f) => f.replyId === message.replyId);
  assert.is(replyText(resumed.frames, message.replyId), '');

  const metrics = await (await fetch(`http://127.0.0.1:${stack.relay.port}/metrics`)).text();
  assert.match(metrics, /relay_moderation_flags_total\{category="violence"\} [1-9]/);
  assert.match(metrics, /relay_moderation_checks_total\{kind="window",outcome="flagged"\} [1-9]/);
});

test('a phrase split across two steps is seen by the window that overlaps both', async () => {
  const stack = await moderated({});
  const c = await joined(stack, 'mod-split');
  const { end } = await ask(c, 'mod-split', 'split');
  assert.is(end.finishReason, 'content_filter');
  assert.match(end.error?.message ?? '', 'harassment');
  const upstream = stack.model.requests.at(-1)!;
  await upstream.closed;
  assert.ok(upstream.aborted, 'cut by a window mid-stream, not by the check of the whole reply');
});

test('buffered: no client ever receives flagged text; what passed before it stays', async () => {
  const stack = await moderated({ MODERATION_MODE: 'buffered' });
  const c = await joined(stack, 'mod-buf');
  const watcher = await joined(stack, 'mod-buf');
  const { message, end } = await ask(c, 'mod-buf', 'third');
  assert.is(end.finishReason, 'content_filter');
  assert.is(end.redacted, undefined, 'nothing flagged went out, so nothing is taken back');
  for (const client of [c, watcher]) {
    assert.not.ok(replyText(client.frames, message.replyId).includes('zorblax'), 'never sent');
  }
  const shown = replyText(watcher.frames, message.replyId);
  assert.ok(REPLIES.third!.startsWith(shown), 'what went out is the start of the reply');
  const late = await joined(stack, 'mod-buf');
  const snapshot = late.frames.find((f) => f.type === 'joined');
  const entry = snapshot?.type === 'joined' ? snapshot.history.find((m) => m.id === message.replyId) : undefined;
  assert.is(entry?.text, shown);
  // A clean reply comes out whole, after its last check.
  const clean = await ask(c, 'mod-buf', 'clean');
  assert.is(clean.end.finishReason, 'stop');
  assert.is(replyText(c.frames, clean.message.replyId), REPLIES.clean);
});

test('the moderation API down: fail open lets messages and replies through, fail closed refuses them', async () => {
  // A port nothing listens on.
  const down = `http://127.0.0.1:${await freePort()}/v1`;
  const open = await moderated({ MODERATION_FAIL_MODE: 'open' }, down);
  const a = await joined(open, 'mod-down');
  const passed = await ask(a, 'mod-down', 'clean');
  assert.is(passed.end.finishReason, 'stop');
  assert.is(replyText(a.frames, passed.message.replyId), REPLIES.clean);

  const closed = await moderated({ MODERATION_FAIL_MODE: 'closed' }, down);
  const b = await joined(closed, 'mod-down');
  b.send({ type: 'send', ref: 'x', conversationId: 'mod-down', text: 'clean' });
  const refused = await b.answerTo('x');
  assert.is(refused.type === 'error' && refused.code, 'moderated');
  assert.match(refused.type === 'error' ? refused.message : '', 'unavailable');
  assert.is(chatRequests(closed), 0);
});

test.run();
