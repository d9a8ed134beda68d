// The in-memory usage ledger past its bound: the oldest entries go, from the
// whole ledger and from each user's own list alike, and a user whose entries
// all went is gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryLedger } from '../../server/backend/memory/ledger.js';
import type { LedgerEntry } from '../../server/backend/store.js';

const entry = (i: number, userId: string): LedgerEntry => ({
  replyId: `r${i}`,
  conversationId: 'c',
  userId,
  model: 'm',
  dialect: 'chat',
  promptTokens: 1,
  completionTokens: 1,
  source: 'estimated',
  finishReason: 'stop',
  at: Date.now(),
});

async function ids(ledger: MemoryLedger, userId?: string): Promise<string[]> {
  const out: string[] = [];
  await ledger.read({ from: 0, to: Date.now() + 1, ...(userId ? { userId } : {}) }, (page) => out.push(...page.map((e) => e.replyId)));
  return out;
}

test('each user keeps exactly their entries that the whole ledger keeps', async () => {
  const ledger = new MemoryLedger({ ledgerRetentionMs: 3_600_000, ledgerMaxEntries: 1_000 });
  const written: LedgerEntry[] = [];
  for (let i = 0; i < 5_000; i++) {
    const e = entry(i, i < 100 ? 'early' : i % 3 === 0 ? 'ann' : 'bo');
    written.push(e);
    ledger.add(e);
  }
  const all = await ids(ledger);
  assert.ok(all.length >= 1_000 && all.length <= 2_000, `bounded: ${all.length}`);
  assert.equal(all, written.slice(-all.length).map((e) => e.replyId), 'the newest, in order');
  for (const user of ['ann', 'bo']) {
    const kept = new Set(all);
    assert.equal(await ids(ledger, user), written.filter((e) => e.userId === user && kept.has(e.replyId)).map((e) => e.replyId), user);
  }
  assert.equal(await ids(ledger, 'early'), [], 'a user whose entries all went is gone');
});

test.run();
