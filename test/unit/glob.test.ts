// The `conversations` claim's patterns: `*` is any run of characters, the rest
// is literal, a pattern matches a whole id. Matching must take a number of
// steps bounded by the lengths, however the stars are placed: a regex took
// seconds for `team-*-*-*-*-*-x` against `team-` and 123 dashes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conversationMatcher, globMatch } from '../../server/session/auth.js';

/** The definition, by recursion over both strings (memoized, so it is exact and fast for short inputs). */
function reference(pattern: string, id: string): boolean {
  const memo = new Map<string, boolean>();
  const at = (p: number, i: number): boolean => {
    const key = `${p},${i}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (p === pattern.length) result = i === id.length;
    else if (pattern[p] === '*') result = at(p + 1, i) || (i < id.length && at(p, i + 1));
    else result = i < id.length && pattern[p] === id[i] && at(p + 1, i + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}

/** A deterministic stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    return s / 2 ** 32;
  };
}

test('examples', () => {
  const cases: Array<[string, string, boolean]> = [
    ['team-1:*', 'team-1:', true],
    ['team-1:*', 'team-1:general', true],
    ['team-1:*', 'team-2:general', false],
    ['lobby', 'lobby', true],
    ['lobby', 'lobby2', false],
    ['lobby', 'lobb', false],
    ['*', 'anything.at:all', true],
    ['*-dm', 'alice-bob-dm', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'a-b-c-b', false],
    ['a**', 'a', true],
    ['a.b', 'axb', false],
    ['a.b', 'a.b', true],
    ['*x*', 'aaa', false],
  ];
  for (const [pattern, id, expected] of cases) assert.is(globMatch(pattern, id).matched, expected, `${pattern} ~ ${id}`);
});

test('agrees with the definition on random patterns and ids', () => {
  const rnd = random(42);
  const word = (alphabet: string, max: number) =>
    Array.from({ length: Math.floor(rnd() * max) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  for (let n = 0; n < 5000; n++) {
    const pattern = word('ab-*', 10) || '*';
    const id = word('ab-', 14);
    assert.is(globMatch(pattern, id).matched, reference(pattern, id), `${pattern} ~ ${id}`);
  }
});

test('the pathological claim: steps grow linearly with the id', () => {
  const pattern = 'team-*-*-*-*-*-x';
  const half = globMatch(pattern, `team-${'-'.repeat(61)}`);
  const full = globMatch(pattern, `team-${'-'.repeat(123)}`);
  assert.not.ok(full.matched);
  assert.ok(full.steps <= 2 * half.steps + pattern.length, `${half.steps} steps, then ${full.steps} for twice the dashes`);
  assert.not.ok(conversationMatcher([pattern])(`team-${'-'.repeat(123)}`));
});

test('steps never exceed (id length + 1) × (pattern length + 1), for the longest claims', () => {
  const rnd = random(9);
  const shapes = [
    (n: number) => `*${'a'.repeat(n - 2)}b`,
    (n: number) => '*a'.repeat(n / 2),
    (n: number) => Array.from({ length: n }, () => (rnd() < 0.3 ? '*' : 'a')).join(''),
  ];
  for (const shape of shapes) {
    for (const n of [16, 64, 128]) {
      const pattern = shape(n);
      const id = 'a'.repeat(128);
      const { steps } = globMatch(pattern, id);
      assert.ok(steps <= (id.length + 1) * (pattern.length + 1), `${pattern}: ${steps} steps`);
    }
  }
});

test.run();
