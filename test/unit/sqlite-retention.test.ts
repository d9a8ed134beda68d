// The embedded store's bounds, on a real database: conversations idle past
// their age are dropped, the oldest idle ones go first once the file nears
// DATA_MAX_BYTES, freed pages go back to the file system, and a conversation
// this process holds, and the usage ledger, stay.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../server/log.js';
import { SqliteStore } from '../../server/backend/sqlite/store.js';
import type { StoreLimits } from '../../server/backend/store.js';

const MB = 1024 * 1024;
const limits: StoreLimits = {
  historyLimit: 200,
  eventLogMax: 20_000,
  eventLogMaxAgeMs: 900_000,
  eventLogMaxBytes: 16 * MB,
  maxQueuedReplies: 4,
  conversationIdleMs: 600_000,
  ledgerRetentionMs: 3_600_000,
  ledgerMaxEntries: 1_000,
};
const user = { id: 'u', name: 'U' };
const log = createLogger('silent', false);
let dataDir: string;

test.before.each(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'relay-retention-'));
});
test.after.each(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const open = (opts: { maxBytes?: number; retentionMs?: number } = {}) =>
  new SqliteStore(limits, { dataDir, maxBytes: opts.maxBytes ?? 64 * MB, retentionMs: opts.retentionMs ?? 0, sweepEveryMs: 3_600_000, attachments: { userBytes: MB, userCount: 10, totalBytes: MB } }, log);

/** A conversation of `n` messages of `size` characters, and one billed reply. */
async function fill(store: SqliteStore, id: string, n: number, size: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const message = { id: `${id}-m${i}`, role: 'user' as const, author: user, text: 'x'.repeat(size), createdAt: Date.now() };
    await store.submit(id, { type: 'message', conversationId: id, message }, undefined);
  }
  const bill = { replyId: `${id}-r`, conversationId: id, userId: 'u', model: 'm', dialect: 'chat', promptTokens: 1, completionTokens: 1, source: 'estimated' as const, finishReason: 'cancelled' as const, at: Date.now() };
  store.log.append(id, { type: 'reply.end', conversationId: id, replyId: bill.replyId, finishReason: 'cancelled' }, undefined, bill);
}

async function billedConversations(store: SqliteStore): Promise<string[]> {
  const ids: string[] = [];
  await store.ledger.read({ from: 0, to: Date.now() + 1 }, (entries) => ids.push(...entries.map((e) => e.conversationId)));
  return ids.sort();
}

test('past 80 % of DATA_MAX_BYTES the oldest idle conversations go first; freed pages are returned; the ledger stays', async () => {
  let store = open();
  for (let i = 0; i < 12; i++) await fill(store, `c${String(i).padStart(2, '0')}`, 10, 8_000);
  await store.close();
  const before = statSync(join(dataDir, 'relay.db')).size;

  assert.ok(before > 1 * MB, `${before} bytes written`);
  // Reopened with a cap the data is well over (nothing is held in memory, everything is idle): the sweep at start.
  store = open({ maxBytes: 1 * MB });
  await store.sweep();
  const { bytes, conversations } = store.disk();
  assert.ok(bytes <= 0.8 * MB, `${bytes} bytes after the sweep`);
  assert.ok(conversations > 0 && conversations < 12, `${conversations} conversations kept`);
  // The newest are the ones kept.
  for (let i = 12 - conversations; i < 12; i++) assert.ok((await store.log.snapshot(`c${String(i).padStart(2, '0')}`)).history.length === 10);
  assert.is((await store.log.snapshot('c00')).history.length, 0);
  assert.equal(await billedConversations(store), Array.from({ length: 12 }, (_, i) => `c${String(i).padStart(2, '0')}`), 'billing records stay');
  await store.close();
  assert.ok(statSync(join(dataDir, 'relay.db')).size < before, 'the file shrank');
});

test('conversations idle past DATA_RETENTION_DAYS are dropped; one in use is kept', async () => {
  const first = open({ retentionMs: 60_000 });
  await fill(first, 'old', 2, 100);
  await fill(first, 'held', 2, 100);
  await first.close();
  const store = open({ retentionMs: 60_000 });
  // "held" is read back into this process (as when members use it); "old" stays on disk only.
  assert.is((await store.log.snapshot('held')).history.length, 2);
  await store.sweep(Date.now() + 120_000);
  assert.is(store.disk().conversations, 1);
  assert.is((await store.log.snapshot('held')).history.length, 2);
  assert.is((await store.log.snapshot('old')).history.length, 0);
  await store.close();
});

test.run();
