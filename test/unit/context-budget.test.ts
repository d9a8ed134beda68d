// buildContext: the prompt fits CONTEXT_TOKENS, newest messages first; the
// message being answered is always sent, its middle cut out when it alone
// is over the budget, both ends kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HistoryMessage } from '../../shared/protocol.js';
import { buildContext, countTokens, toContextMessage } from '../../server/reply/context.js';
import { TOKEN_ESTIMATE } from '../../server/attachments/load.js';

const SYSTEM = 'You are a helpful assistant.';
const SYSTEM_TOKENS = countTokens(SYSTEM) + 4;

let ids = 0;
function message(role: HistoryMessage['role'], text: string) {
  return toContextMessage({ id: `m${ids++}`, role, text, createdAt: 0, ...(role === 'user' ? { author: { id: 'u1', name: 'Ann Lee' } } : {}) });
}

function textOf(turn: { text: string }): string {
  return turn.text;
}

test('older messages go in newest first, as far as the budget reaches', async () => {
  const history = [message('user', 'one two three'), message('assistant', 'four five six'), message('user', 'seven eight nine'), message('user', 'ten')];
  const each = history.map((m) => m.tokens);
  const budget = SYSTEM_TOKENS + each[3]! + each[2]! + each[1]!;
  const { messages, promptTokens } = await buildContext(SYSTEM, history, budget);
  assert.equal(messages.map(textOf), [SYSTEM, 'seven eight nine', 'ten'], 'the assistant turn that would open the context is left out too');
  assert.is(promptTokens, SYSTEM_TOKENS + each[3]! + each[2]!);
  const asked = messages[1]!;
  assert.is(asked.role === 'user' ? asked.name : undefined, 'Ann Lee', 'the author goes with the message, for each dialect to say its own way');
});

test('attachments count against the budget at their documented estimate, so an image pushes older messages out', async () => {
  const image = { id: 'a1', mediaType: 'image/png', bytes: 5_000, name: 'shot.png' };
  const pdf = { id: 'a2', mediaType: 'application/pdf', bytes: 30_000 };
  const plain = message('user', 'look at this');
  const withFiles = toContextMessage({ id: `m${ids++}`, role: 'user', text: 'look at this', createdAt: 0, author: { id: 'u1', name: 'Ann Lee' }, attachments: [image, pdf] });
  assert.is(withFiles.tokens, plain.tokens + TOKEN_ESTIMATE.image + 30_000 / TOKEN_ESTIMATE.pdfBytesPerToken);
  const older = message('user', 'an older question');
  const budget = SYSTEM_TOKENS + withFiles.tokens + older.tokens - 1;
  const { messages } = await buildContext(SYSTEM, [older, withFiles], budget);
  assert.equal(messages.map(textOf), [SYSTEM, 'look at this']);
  const sent = messages.at(-1)!;
  assert.equal(sent.role === 'user' && sent.attachments, [image, pdf], 'the files go with their message, to be read for the call');
});

test('a newest message that fits is sent whole', async () => {
  const { messages } = await buildContext(SYSTEM, [message('user', 'Hello there')], 1000);
  assert.is(textOf(messages.at(-1)!), 'Hello there');
});

const LONG: Record<string, string> = {
  'English prose': `Summarize this: ${'The quick brown fox jumps over the lazy dog, and then it rests. '.repeat(600)}What is it about?`,
  'random CJK without a space': Array.from({ length: 16_000 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20_901))).join(''),
  'one letter repeated': 'a'.repeat(30_000),
};

for (const [name, text] of Object.entries(LONG)) {
  test(`${name} over the budget: cut in the middle, the prompt fits`, async () => {
    for (const budget of [64, 200, 1000, 2000]) {
      const older = message('user', 'an older message that no longer fits');
      const { messages, promptTokens } = await buildContext(SYSTEM, [older, message('user', text)], budget);
      assert.ok(promptTokens <= budget, `${promptTokens} tokens for a budget of ${budget}`);
      assert.ok(promptTokens >= budget * 0.8, `only ${promptTokens} of ${budget} tokens used`);
      assert.is(messages.length, 2, 'the system prompt and the cut message');
      const sent = textOf(messages[1]!);
      assert.is(promptTokens, SYSTEM_TOKENS + countTokens(sent) + 4, 'the count is of what is sent');
      const [head, tail] = sent.split(' […] ');
      assert.ok(head && tail, 'both ends are kept, joined by the marker');
      assert.ok(text.startsWith(head) && text.endsWith(tail), 'the ends are the message’s own');
      const kept = countTokens(sent);
      assert.ok(countTokens(head) >= kept / 4 && countTokens(tail) >= kept / 4, 'about half each');
    }
  });
}

test('a system prompt that fills the budget still leaves the question its least', async () => {
  const system = 'Be brief. '.repeat(50);
  const { messages, promptTokens } = await buildContext(system, [message('user', LONG['English prose']!)], 64);
  const sent = textOf(messages.at(-1)!);
  assert.ok(sent.startsWith('Summarize this:') && sent.endsWith('about?'), sent);
  assert.ok(countTokens(sent) + 4 <= 32, `${countTokens(sent)} tokens kept`);
  assert.is(promptTokens, countTokens(system) + 4 + countTokens(sent) + 4);
});

test.run();
