// CONTEXT_TOKENS bounds the prompt, also when the message being answered is
// longer than that on its own: it is sent with its middle cut out, its start
// and end kept, and the prompt (as reply.end reports it when the upstream
// reports no usage, and as the model received it) fits the budget.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countTokens } from '../../server/reply/context.js';
import { startStack, type Stack } from '../helpers.js';

const BUDGET = 300;
let stack: Stack;
test.before(async () => {
  stack = await startStack({ env: { CONTEXT_TOKENS: String(BUDGET), UPSTREAM_INCLUDE_USAGE: 'false' }, plan: () => ({ text: 'ok' }) });
});
test.after(async () => {
  await stack.close();
});

test('a message longer than the budget is sent cut in the middle, and the prompt fits', async () => {
  const c = await stack.connect();
  const long = `Please read this report. ${'Sales rose in the north and fell in the south. '.repeat(300)}Which region did better?`;
  c.send({ type: 'send', conversationId: 'budget', text: 'an earlier question', reply: false });
  c.send({ type: 'send', conversationId: 'budget', text: long });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop');
  assert.is(end.usage?.source, 'estimated');
  assert.ok(end.usage!.promptTokens <= BUDGET, `the prompt was counted at ${end.usage!.promptTokens} tokens`);

  const received = stack.model.requests.at(-1)!.messages;
  assert.equal(
    received.map((m) => m.role),
    ['system', 'user'],
    'the cut message goes alone',
  );
  const question = received[1]!.content;
  assert.ok(question.startsWith('Please read this report. Sales rose'), question.slice(0, 60));
  assert.ok(question.endsWith('Which region did better?'), question.slice(-60));
  assert.ok(question.includes(' […] '));
  const counted = received.reduce((n, m) => n + countTokens(m.content) + 4, 0);
  assert.is(counted, end.usage!.promptTokens, 'what was sent is what was counted');
  // Only the model's copy is cut: the conversation keeps the message whole.
  const other = await stack.connect();
  other.send({ type: 'join', conversationId: 'budget' });
  const { history } = await other.next('joined');
  assert.ok(history.some((m) => m.text === long));
});

test('a message that fits is sent whole, with the history before it', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'fits', text: 'first', reply: false });
  c.send({ type: 'send', conversationId: 'fits', text: 'What was my first word?' });
  await c.next('reply.end');
  const received = stack.model.requests.at(-1)!.messages;
  assert.equal(
    received.map((m) => m.content),
    ['You are a helpful assistant.', 'first', 'What was my first word?'],
  );
});

test.run();
