import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack, type TestClient } from '../helpers.js';

let stack: Stack;
let c: TestClient;
test.before(async () => {
  stack = await startStack({ plan: () => ({ text: 'ok' }) });
  c = await stack.connect();
});
test.after(async () => {
  await stack.close();
});

/** Send raw text; expect a bad_frame error (with `ref` if given) and the socket still answering. */
async function expectBadFrame(raw: string, ref?: string, mentions?: string): Promise<void> {
  const errorsBefore = c.frames.filter((f) => f.type === 'error').length;
  c.sendRaw(raw);
  const err = await c.next('error');
  assert.is(err.code, 'bad_frame', raw);
  assert.is(err.ref, ref, `ref of ${raw}`);
  if (mentions) assert.ok(err.message.includes(mentions), `"${err.message}" names ${mentions}`);
  assert.is(c.frames.filter((f) => f.type === 'error').length, errorsBefore + 1);
  c.send({ type: 'ping', ref: 'alive' });
  await c.next('pong');
}

test('not JSON', () => expectBadFrame('{"type": "ping"'));
test('JSON that is not an object', async () => {
  await expectBadFrame('[1,2,3]');
  await expectBadFrame('42');
  await expectBadFrame('null');
  await expectBadFrame('"send"');
});
test('unknown type, with its ref', () => expectBadFrame('{"type":"explode","ref":"u1"}', 'u1', 'explode'));
test('missing type', () => expectBadFrame('{"ref":"m1"}', 'm1'));
test('missing conversationId', () => expectBadFrame('{"type":"join","ref":"j1"}', 'j1', 'conversationId'));
test('conversationId with forbidden characters', () =>
  expectBadFrame('{"type":"join","conversationId":"a b/c","ref":"j2"}', 'j2', 'conversationId'));
test('conversationId too long', () =>
  expectBadFrame(JSON.stringify({ type: 'join', conversationId: 'x'.repeat(129), ref: 'j3' }), 'j3', 'conversationId'));
test('negative since', () =>
  expectBadFrame('{"type":"join","conversationId":"a","since":-1,"ref":"j4"}', 'j4', 'since'));
test('empty text', () => expectBadFrame('{"type":"send","conversationId":"a","text":"","ref":"s1"}', 's1', 'text'));
test('text over the cap', () =>
  expectBadFrame(JSON.stringify({ type: 'send', conversationId: 'a', text: 'x'.repeat(32_001), ref: 's2' }), 's2', 'text'));
test('text over the announced maxTextChars', () =>
  expectBadFrame(JSON.stringify({ type: 'send', conversationId: 'a', text: 'x'.repeat(16_001), ref: 's3' }), 's3', 'maxTextChars'));
test('options out of range', async () => {
  await expectBadFrame('{"type":"send","conversationId":"a","text":"hi","options":{"temperature":7},"ref":"o1"}', 'o1', 'temperature');
  await expectBadFrame('{"type":"send","conversationId":"a","text":"hi","options":{"maxTokens":0},"ref":"o2"}', 'o2', 'maxTokens');
});
test('wrong field types', async () => {
  await expectBadFrame('{"type":"send","conversationId":"a","text":42,"ref":"w1"}', 'w1', 'text');
  await expectBadFrame('{"type":"send","conversationId":"a","text":"hi","reply":"yes","ref":"w2"}', 'w2', 'reply');
});
test('a ref over 64 chars is a schema violation (and not echoed)', () =>
  expectBadFrame(JSON.stringify({ type: 'ping', ref: 'r'.repeat(65) })));
test('a second hello', () => expectBadFrame('{"type":"hello","ref":"h2"}', 'h2'));

// The caps of shared/protocol.ts (frameCaps), as SECURITY.md states them: one past is bad_frame, at the cap is taken.
test('auth token: 8192 chars taken, 8193 bad_frame', async () => {
  c.send({ type: 'auth', token: 't'.repeat(8192), ref: 'a0' });
  assert.is((await c.next('authed')).ref, 'a0');
  await expectBadFrame(JSON.stringify({ type: 'auth', token: 't'.repeat(8193), ref: 'a1' }), 'a1', 'token');
});
test('clientMessageId: 128 chars taken, 129 bad_frame', async () => {
  c.send({ type: 'send', conversationId: 'caps', text: 'hi', reply: false, clientMessageId: 'i'.repeat(128) });
  assert.is((await c.next('message')).message.clientMessageId, 'i'.repeat(128));
  await expectBadFrame(JSON.stringify({ type: 'send', conversationId: 'caps', text: 'hi', reply: false, clientMessageId: 'i'.repeat(129), ref: 'i1' }), 'i1', 'clientMessageId');
});
test('cancel replyId: 128 chars taken, 129 bad_frame', async () => {
  c.send({ type: 'cancel', conversationId: 'caps', replyId: 'r'.repeat(128), ref: 'c0' });
  assert.is((await c.next('error')).code, 'not_found');
  await expectBadFrame(JSON.stringify({ type: 'cancel', conversationId: 'caps', replyId: 'r'.repeat(129), ref: 'c1' }), 'c1', 'replyId');
});
test('options.model: 128 chars taken, 129 bad_frame', async () => {
  c.send({ type: 'send', conversationId: 'caps', text: 'hi', options: { model: 'm'.repeat(128) }, ref: 'm0' });
  assert.is((await c.next('error')).code, 'forbidden', 'past the schema, refused by the allow-list');
  await expectBadFrame(JSON.stringify({ type: 'send', conversationId: 'caps', text: 'hi', options: { model: 'm'.repeat(129) }, ref: 'm1' }), 'm1', 'model');
});
test('options.maxTokens: 131072 taken, 131073 bad_frame', async () => {
  c.send({ type: 'send', conversationId: 'caps', text: 'hi', options: { maxTokens: 131_072 } });
  assert.is((await c.next('reply.end')).finishReason, 'stop');
  await expectBadFrame(JSON.stringify({ type: 'send', conversationId: 'caps', text: 'hi', options: { maxTokens: 131_073 }, ref: 'x1' }), 'x1', 'maxTokens');
});

test('prototype-polluting keys are inert', async () => {
  c.sendRaw('{"type":"send","conversationId":"proto","text":"hi","__proto__":{"reply":false},"constructor":{"prototype":{"polluted":true}}}');
  const end = await c.next('reply.end');
  assert.is(end.conversationId, 'proto', 'the reply still ran: __proto__ did not set reply=false');
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test('nothing accepted before a bad frame is lost', async () => {
  c.send({ type: 'send', conversationId: 'keep', text: 'first', reply: false });
  c.sendRaw('not json at all');
  c.send({ type: 'send', conversationId: 'keep', text: 'second', reply: false });
  await c.next('message', (m) => m.message.text === 'second');
  const texts = c.frames.filter((f) => f.type === 'message' && f.conversationId === 'keep').map((f) => (f.type === 'message' ? f.message.text : ''));
  assert.equal(texts, ['first', 'second']);
});

test.run();
