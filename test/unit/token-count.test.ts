// countTokens must cost time linear in its input, whatever the input (the
// tokenizer's byte-pair merge is quadratic in the length of one pre-token),
// and must still count ordinary text exactly as the tokenizer counts it whole.
//
// Cost is measured without a clock: the tokenizer's merge loop does about
// n² steps for a pre-token of n bytes, so every pre-token it merges is
// recorded (with its merge cache off, so nothing is skipped).
import { countTokens as wholeCount, setMergeCacheSize } from 'gpt-tokenizer';
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countTokens, MAX_RUN_CHARS } from '../../server/reply/context.js';

const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** The merge steps (sum of squared pre-token bytes) and the longest pre-token, in bytes, that `count` made the tokenizer merge. */
function mergeWork(count: () => void): { steps: number; longest: number } {
  const proto = BytePairEncodingCore.prototype;
  const merge = proto['bytePairMerge'];
  let steps = 0;
  let longest = 0;
  proto['bytePairMerge'] = function (this: BytePairEncodingCore, piece: Uint8Array) {
    steps += piece.length ** 2;
    longest = Math.max(longest, piece.length);
    return merge.call(this, piece);
  };
  setMergeCacheSize(0);
  try {
    count();
  } finally {
    proto['bytePairMerge'] = merge;
    setMergeCacheSize(100_000);
  }
  return { steps, longest };
}

/** A deterministic stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    return s / 2 ** 32;
  };
}

const pick = (alphabet: string[]) => (length: number, rnd: () => number) =>
  Array.from({ length }, () => alphabet[Math.floor(rnd() * alphabet.length)]!).join('').slice(0, length);
const codePoints = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));

// Text without a space, in the shapes the tokenizer keeps as one pre-token (or nearly).
const HOSTILE: Record<string, (length: number, rnd: () => number) => string> = {
  'random CJK characters': pick(codePoints(0x4e00, 0x9fa5)),
  'random lowercase letters': pick(codePoints(0x61, 0x7a)),
  'one letter repeated': (length) => 'a'.repeat(length),
  'punctuation, then line breaks and slashes': (length, rnd) => `!${pick(['\n', '/', '\r'])(length - 1, rnd)}`,
  'spaces': (length) => ' '.repeat(length),
  'emoji (surrogate pairs)': pick(codePoints(0x1f300, 0x1f5ff)),
};

test('the merge steps of the tokenizer are observed', () => {
  assert.ok(mergeWork(() => countTokens(HOSTILE['random CJK characters']!(100, random(1)))).steps > 0);
});

for (const [name, make] of Object.entries(HOSTILE)) {
  test(`counting ${name} is linear: 4× the text, about 4× the work`, () => {
    const rnd = random(7);
    const short = make(4_000, rnd);
    const long = make(16_000, rnd);
    const one = mergeWork(() => countTokens(short));
    const four = mergeWork(() => countTokens(long));
    assert.ok(four.steps <= 5 * one.steps, `4× the text took ${(four.steps / one.steps).toFixed(1)}× the merge steps`);
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    assert.ok(four.longest <= 3 * MAX_RUN_CHARS, `the tokenizer merged a pre-token of ${four.longest} bytes`);
  });
}

const PROSE = `Open the chat page, or talk to the socket with any WebSocket client. Every conversation event carries seq, an integer that strictly increases within the conversation; gaps are allowed, and clients must not treat one as an error.

- **Real cancel**: Stop aborts the upstream HTTP request, so no tokens are billed after it.
- Lossless resume: a client that drops and comes back with \`join {since}\` gets every event it missed (in order, none twice).

    function backoff(attempt: number): number {
      return Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    }

See https://example.com/docs/protocol#resume for the details; it costs $0.15 per 1,000,000 tokens (2024-05-13).
Die Verbindung wurde unterbrochen, weil der Server neu gestartet wurde. Bitte versuchen Sie es später erneut.
Соединение было прервано, потому что сервер перезапустился. Пожалуйста, попробуйте ещё раз.
L'assistant répond « bonjour » — puis s'arrête net. Ça marche? Oui ! 👍🏽 Done…`;

test('ordinary text is counted exactly as the tokenizer counts it whole', () => {
  assert.is(countTokens(PROSE), wholeCount(PROSE, PLAIN_TEXT));
  assert.is(countTokens(PROSE.repeat(20)), wholeCount(PROSE.repeat(20), PLAIN_TEXT));
});

test('text with long runs is counted within 2% of the tokenizer on the whole', () => {
  const chinese = '消息在到达之前就被截断了，所以模型只看到了开头和结尾。请把问题放在消息的最后，这样它总能被看到。'.repeat(40);
  const json = JSON.stringify({ type: 'reply.end', conversationId: 'demo', seq: 99, usage: { promptTokens: 1234 } }).repeat(40);
  for (const text of [chinese, json]) {
    const exact = wholeCount(text, PLAIN_TEXT);
    assert.ok(Math.abs(countTokens(text) - exact) <= exact * 0.02, `${countTokens(text)} against ${exact}`);
  }
});

test('special-token strings are plain text, and nothing is empty that has text', () => {
  assert.is(countTokens(''), 0);
  assert.is(countTokens('<|endoftext|>'), wholeCount('<|endoftext|>', PLAIN_TEXT));
  assert.ok(countTokens('<|endoftext|>') > 1);
  assert.is(countTokens(' '), 1);
});

test.run();
