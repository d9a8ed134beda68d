// The usage ledger read in pages by time, on every backend: every entry once,
// oldest first, also when many share one millisecond and pages end among them,
// and one user's entries alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LedgerEntry, Store } from '../../server/backend/store.js';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
let store: Store | undefined;
test.before(async () => {
  stack = await startStack({ wrapStore: (s) => (store = s) });
});
test.after(async () => {
  await stack.close();
});

test('2,500 entries, ten per millisecond: each read once, in order; one user\'s alone', async () => {
  const base = Date.now() - 60_000;
  const entries: LedgerEntry[] = Array.from({ length: 2_500 }, (_, i) => ({
    replyId: `r${String(i).padStart(5, '0')}`,
    conversationId: 'paging',
    userId: i % 5 === 0 ? 'five' : 'rest',
    model: 'm',
    dialect: 'chat',
    promptTokens: 1,
    completionTokens: i,
    source: 'estimated',
    finishReason: 'cancelled',
    at: base + Math.floor(i / 10),
  }));
  // Each bill goes in as the ledger is written: with the end of a reply (one that never started).
  for (const bill of entries) await store!.log.append('paging', { type: 'reply.end', conversationId: 'paging', replyId: bill.replyId, finishReason: 'cancelled' }, undefined, bill);

  const read = async (userId?: string) => {
    const ids: string[] = [];
    let pages = 0;
    await store!.ledger.read({ from: 0, to: Date.now() + 1, ...(userId ? { userId } : {}) }, (page) => {
      pages++;
      ids.push(...page.map((e) => e.replyId));
    });
    return { ids, pages };
  };
  const all = await read();
  assert.ok(all.pages >= 3, `${all.pages} pages`);
  assert.equal(all.ids, entries.map((e) => e.replyId));
  assert.equal((await read('five')).ids, entries.filter((e) => e.userId === 'five').map((e) => e.replyId));
});

test.run();
