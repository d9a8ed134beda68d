// The sliding-window gate against a moderation API whose answers the test
// gives by hand: a check covers everything since the last one that passed
// (so steps that came due while a check ran are never let out unchecked),
// buffered text goes out only once covered, and nothing goes out after a
// cut or after the reply was closed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Metrics } from '../../server/metrics.js';
import { ReplyGate, type Checker } from '../../server/moderation/gate.js';
import type { ModerationInput, Verdict } from '../../server/moderation/api.js';

const metrics = new Metrics({ sockets: () => 0, conversations: () => 0, activeReplies: () => 0, queuedReplies: async () => 0, maxMemberLag: () => 0, disk: () => undefined });
const PASS: Verdict = { flagged: false, categories: [] };
const FLAG: Verdict = { flagged: true, categories: ['violence'] };

/** Checks wait until the test answers them, in order. */
class HandChecker implements Checker {
  readonly asked: string[] = [];
  private readonly answers: Array<(v: Verdict) => void> = [];
  check(input: ModerationInput): Promise<Verdict> {
    this.asked.push(typeof input === 'string' ? input : JSON.stringify(input));
    return new Promise((resolve) => this.answers.push(resolve));
  }
  async answer(v: Verdict): Promise<void> {
    this.answers.shift()!(v);
    await new Promise((r) => setImmediate(r));
  }
}

function gate(mode: 'optimistic' | 'buffered', checker: Checker) {
  const out: string[] = [];
  const cuts: Verdict[] = [];
  const g = new ReplyGate(checker, { mode, windowTokens: 4, stepTokens: 2 }, { emit: (p) => void out.push(p.text ?? p.reasoning ?? ''), cut: (v) => void cuts.push(v) }, metrics);
  return { g, out, cuts };
}

test('buffered: pieces that came due while a check ran are checked before they go out', async () => {
  const api = new HandChecker();
  const { g, out } = gate('buffered', api);
  for (const t of ['a', 'b']) g.push({ text: t });
  assert.equal(api.asked, ['ab']);
  for (const t of ['c', 'd', 'BAD', 'f']) g.push({ text: t });
  assert.equal(out, [], 'nothing out before a check passed');
  await api.answer(PASS);
  assert.equal(out, ['a', 'b'], 'only what that check covered');
  // The next check takes everything since the last pass (with the overlap before it), not only the newest window.
  assert.equal(api.asked[1], 'abcdBADf');
  await api.answer(FLAG);
  assert.equal(out, ['a', 'b'], 'the flagged text never went out');
  assert.equal(g.verdict?.redact, false);
});

test('optimistic: text goes out at once; a flag cuts and redacts', async () => {
  const api = new HandChecker();
  const { g, out, cuts } = gate('optimistic', api);
  for (const t of ['a', 'b', 'BAD']) g.push({ text: t });
  assert.equal(out, ['a', 'b', 'BAD']);
  await api.answer(FLAG);
  assert.equal(cuts, [FLAG]);
  assert.equal(g.verdict?.redact, true);
  g.push({ text: 'after' });
  assert.equal(out, ['a', 'b', 'BAD'], 'nothing after the cut');
});

test('reasoning is moderated too, and a reply of only reasoning is let out at its end', async () => {
  const api = new HandChecker();
  const { g, out } = gate('buffered', api);
  g.push({ reasoning: 'thinking' });
  const done = g.finish();
  await new Promise((r) => setImmediate(r));
  assert.equal(api.asked, ['thinking'], 'the whole reply, reasoning included');
  await api.answer(PASS);
  await done;
  assert.equal(out, ['thinking']);
});

test('after close, a late verdict lets nothing out and cuts nothing, but a flag still redacts what went out', async () => {
  const api = new HandChecker();
  const { g, out, cuts } = gate('buffered', api);
  for (const t of ['a', 'b']) g.push({ text: t });
  const closed = g.close();
  await api.answer(PASS);
  await closed;
  assert.equal(out, [], 'held pieces are dropped on close');

  const api2 = new HandChecker();
  const opt = gate('optimistic', api2);
  for (const t of ['x', 'y']) opt.g.push({ text: t });
  const closing = opt.g.close();
  await api2.answer(FLAG);
  await closing;
  assert.equal(opt.cuts, [], 'the reply has already ended: no cut');
  assert.equal(opt.g.verdict?.redact, true, 'but what went out is redacted');
  assert.equal(cuts, []);
});

test.run();
