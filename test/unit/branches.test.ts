// The tree rules every backend shares (server/history/branches.ts): the active
// path and sibling places, where a switch leads, what a regenerate answers,
// which entries the history bound drops, and how a pre-branch history reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HistoryMessage } from '../../shared/protocol.js';
import { activePath, linkLegacy, newestDescendant, onPath, regeneration, toPrune } from '../../server/history/branches.js';
import type { HistoryEntry } from '../../server/history/fold.js';

let seq = 0;
function entry(id: string, role: HistoryMessage['role'], parentId?: string, extra: Partial<HistoryMessage> = {}): HistoryEntry {
  return { startSeq: ++seq, message: { id, role, text: id, createdAt: 0, ...(parentId ? { parentId } : {}), ...extra } };
}

/**
 *   q1 ─ a1 ─ q2 ─ a2
 *      └ a1b           (a regenerate of a1)
 *   q1b ─ a3           (an edit of q1)
 */
function tree(): HistoryEntry[] {
  seq = 0;
  return [
    entry('q1', 'user'),
    entry('a1', 'assistant', 'q1', { inReplyTo: 'q1' }),
    entry('q2', 'user', 'a1'),
    entry('a2', 'assistant', 'q2', { inReplyTo: 'q2' }),
    entry('a1b', 'assistant', 'q1', { inReplyTo: 'q1' }),
    entry('q1b', 'user'),
    entry('a3', 'assistant', 'q1b', { inReplyTo: 'q1b' }),
  ];
}

const ids = (messages: ReadonlyArray<HistoryEntry | HistoryMessage>) => messages.map((m) => ('message' in m ? m.message.id : m.id));

test('the active path runs from the leaf to the start, each message with its place among its siblings', () => {
  const path = activePath(tree(), 'a2');
  assert.equal(ids(path), ['q1', 'a1', 'q2', 'a2']);
  assert.equal(path.map((m) => m.siblings), [
    { index: 0, count: 2, ids: ['q1', 'q1b'] },
    { index: 0, count: 2, ids: ['a1', 'a1b'] },
    { index: 0, count: 1 },
    { index: 0, count: 1 },
  ]);
  assert.equal(activePath(tree(), 'a3').map((m) => m.siblings), [{ index: 1, count: 2, ids: ['q1', 'q1b'] }, { index: 0, count: 1 }]);
});

test('a leaf streaming right now (not in history yet) puts its parent at the end of the path', () => {
  assert.equal(ids(onPath(tree(), 'r9', { id: 'r9', parentId: 'q2' })), ['q1', 'a1', 'q2']);
  // A leaf that is nowhere (lost with a crash) falls back to the newest entry.
  assert.equal(ids(onPath(tree(), 'gone')), ['q1b', 'a3']);
});

test('a switch leads down the newest children to the end of the branch', () => {
  assert.is(newestDescendant(tree(), 'q1'), 'a1b', 'a1b is newer than a1');
  assert.is(newestDescendant(tree(), 'a1'), 'a2');
  assert.is(newestDescendant(tree(), 'a3'), 'a3');
});

test('a regenerate answers the question that began a reply again, beside its first answer', () => {
  seq = 0;
  const loop = [
    entry('q', 'user'),
    entry('r1', 'assistant', 'q', { inReplyTo: 'q' }),
    entry('tool:r1:c', 'tool', 'r1'),
    entry('r2', 'assistant', 'tool:r1:c', { inReplyTo: 'r1' }),
  ];
  const path = activePath(loop, 'r2');
  for (const named of ['r2', 'r1', 'q', undefined]) {
    const { question, parentId, siblings } = regeneration(path, named);
    assert.is(question.id, 'q', `from ${named}`);
    assert.is(parentId, 'q');
    assert.equal(siblings, { index: 1, count: 2 });
  }
  assert.throws(() => regeneration(path, 'tool:r1:c'), /no message/);
  assert.throws(() => regeneration([], undefined), /no user message/);
  // A question nobody answered yet is answered under itself, as the only answer.
  assert.equal(regeneration(activePath([entry('lone', 'user')], 'lone'), undefined).parentId, 'lone');
});

test('over the bound, the oldest entries off the active path go first, then the oldest on it', () => {
  const all = tree();
  assert.equal(ids(toPrune(all, 'a3', 7)), []);
  assert.equal(ids(toPrune(all, 'a3', 4)), ['q1', 'a1', 'q2']);
  assert.equal(ids(toPrune(all, 'a3', 1)), ['q1', 'a1', 'q2', 'a2', 'a1b', 'q1b']);
});

test('a history written before branches reads as one line, and linking it gives each entry the one before', () => {
  seq = 0;
  const old = [entry('m1', 'user'), entry('m2', 'assistant'), entry('m3', 'user')];
  assert.equal(ids(activePath(old, undefined)), ['m1', 'm2', 'm3']);
  const linked = linkLegacy(old);
  assert.equal(linked.map((e) => e.message.parentId), [undefined, 'm1', 'm2']);
  assert.equal(ids(activePath(linked, 'm3')), ['m1', 'm2', 'm3']);
});

test.run();
