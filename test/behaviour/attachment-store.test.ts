// The attachment store's contract, on this run's backend: a user's bytes and
// files are bounded, and so is the store; an expired file is gone and stops
// counting; references are kept per conversation; the embedded store keeps
// files across a reopen.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AttachmentLimits, AttachmentRecord, AttachmentStore } from '../../server/backend/store.js';
import { MemoryAttachments } from '../../server/backend/memory/attachments.js';
import { SqliteAttachments } from '../../server/backend/sqlite/attachments.js';
import { openDb, type Db } from '../../server/backend/sqlite/db.js';
import { RedisAttachments } from '../../server/backend/redis/attachments.js';
import { Keys } from '../../server/backend/redis/keys.js';
import { backend, eventually } from '../helpers.js';

const LIMITS: AttachmentLimits = { userBytes: 1_000, userCount: 3, totalBytes: 2_500 };

interface Opened {
  store: AttachmentStore;
  reopen?: () => AttachmentStore;
  close(): Promise<void>;
}

function open(limits = LIMITS): Opened {
  switch (backend()) {
    case 'memory':
      return { store: new MemoryAttachments(limits), close: async () => undefined };
    case 'sqlite': {
      const dir = mkdtempSync(join(tmpdir(), 'relay-attachments-'));
      let db: Db = openDb(dir, 64 * 1024 * 1024);
      return {
        store: new SqliteAttachments(db, limits),
        reopen: () => {
          db.close();
          db = openDb(dir, 64 * 1024 * 1024);
          return new SqliteAttachments(db, limits);
        },
        close: async () => {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    case 'redis': {
      const redis = new Redis(process.env.TEST_REDIS_URL!);
      return { store: new RedisAttachments(redis, new Keys(`test-${randomUUID()}:`), limits), close: async () => void redis.disconnect() };
    }
  }
}

let opened: Opened;
test.before.each(() => {
  opened = open();
});
test.after.each(async () => {
  await opened.close();
});

function file(userId: string, bytes: number, ttlMs = 60_000): { record: AttachmentRecord; data: Buffer } {
  const now = Date.now();
  const record = { id: randomBytes(8).toString('hex'), mediaType: 'text/plain', bytes, userId, createdAt: now, expiresAt: now + ttlMs };
  return { record, data: Buffer.alloc(bytes, 'a') };
}

const put = (store: AttachmentStore, f: { record: AttachmentRecord; data: Buffer }) => store.put(f.record, f.data);

test('a user holds files up to their byte quota and file count; another user has their own', async () => {
  const { store } = opened;
  assert.is(await put(store, file('ann', 600)), 'stored');
  assert.is(await put(store, file('ann', 500)), 'user-quota', 'bytes');
  assert.is(await put(store, file('ann', 200)), 'stored');
  assert.is(await put(store, file('ann', 100)), 'stored');
  assert.is(await put(store, file('ann', 10)), 'user-quota', 'files');
  assert.is(await put(store, file('bo', 900)), 'stored');
});

test('the store as a whole is bounded', async () => {
  const { store } = opened;
  assert.is(await put(store, file('a', 1_000)), 'stored');
  assert.is(await put(store, file('b', 1_000)), 'stored');
  assert.is(await put(store, file('c', 600)), 'full');
  assert.is(await put(store, file('c', 500)), 'stored');
});

test('a file is read back whole, with its record, and references are kept per conversation', async () => {
  const { store } = opened;
  const f = file('ann', 300);
  f.data[0] = 0x42;
  await put(store, f);
  assert.equal(await store.get(f.record.id), f.record);
  assert.ok((await store.data(f.record.id))?.equals(f.data));
  assert.equal(await store.referencedBy(f.record.id), []);
  await store.reference(f.record.id, 'c1');
  await store.reference(f.record.id, 'c2');
  await store.reference(f.record.id, 'c1');
  assert.equal((await store.referencedBy(f.record.id)).sort(), ['c1', 'c2']);
  assert.is(await store.get('no-such-file'), undefined);
  assert.is(await store.data('no-such-file'), undefined);
});

test('an expired file is gone, and its bytes stop counting for its owner and the store', async () => {
  const { store } = opened;
  // Long enough that the next put surely sees it still held, on any backend.
  const brief = file('ann', 900, 2_000);
  assert.is(await put(store, brief), 'stored');
  assert.is(await put(store, file('ann', 900)), 'user-quota');
  await eventually(async () => (await store.get(brief.record.id)) === undefined, 'the file to expire');
  assert.is(await store.data(brief.record.id), undefined);
  assert.is(await put(store, file('ann', 900)), 'stored');
  assert.is(await put(store, file('bo', 1_000)), 'stored');
  assert.is(await put(store, file('cy', 600)), 'stored', 'the expired bytes no longer count against the store');
});

test("a user's files are listed oldest first, and erased with their bytes off the user's and the store's totals", async () => {
  const { store } = opened;
  const [a1, a2] = [file('ann', 400), file('ann', 500)];
  // Distinct times: two files made in one millisecond would have no order to check.
  a2.record.createdAt = a1.record.createdAt + 1;
  const b1 = file('bo', 1_000);
  for (const f of [a1, a2, b1]) assert.is(await put(store, f), 'stored');
  await store.reference(a1.record.id, 'c1');
  assert.is(await put(store, file('cy', 700)), 'full', 'the store holds 1,900 of 2,500 bytes');

  assert.equal(await store.ofUser('ann'), [a1.record, a2.record]);
  assert.equal(await store.ofUser('bo'), [b1.record]);
  assert.equal(await store.ofUser('nobody'), []);

  assert.is(await store.removeUser('ann'), 2);
  for (const { record } of [a1, a2]) {
    assert.is(await store.get(record.id), undefined);
    assert.is(await store.data(record.id), undefined);
  }
  assert.equal(await store.referencedBy(a1.record.id), []);
  assert.equal(await store.ofUser('ann'), []);
  assert.is(await store.removeUser('ann'), 0);
  assert.equal(await store.get(b1.record.id), b1.record);
  assert.ok((await store.data(b1.record.id))?.equals(b1.data));

  assert.is(await put(store, file('ann', 1_000)), 'stored', "the user's quota is whole again, and the store has room for it");
  assert.is(await put(store, file('cy', 500)), 'stored');
  assert.is(await put(store, file('cy', 1)), 'full', 'the store counts exactly what it holds');
});

test('an expired file is not listed, and erasing its owner frees its bytes all the same', async () => {
  const { store } = opened;
  const brief = file('ann', 300, 200);
  const kept = file('ann', 400);
  assert.is(await put(store, brief), 'stored');
  assert.is(await put(store, kept), 'stored');
  await eventually(async () => (await store.get(brief.record.id)) === undefined, 'the file to expire');
  assert.equal(await store.ofUser('ann'), [kept.record]);
  // An upload sweeps the expired file first: the erase must not take its bytes off a second time.
  assert.is(await put(store, file('bo', 1_000)), 'stored');
  assert.is(await store.removeUser('ann'), 1, 'only the live file was still theirs to lose');
  assert.is(await put(store, file('cy', 1_000)), 'stored');
  assert.is(await put(store, file('dee', 500)), 'stored');
  assert.is(await put(store, file('dee', 1)), 'full', 'nothing of the erased user still counts');
});

// Only the embedded store has anything to reopen: the others register no such test.
if (backend() === 'sqlite') test('the embedded store keeps files across a reopen', async () => {
  const f = file('ann', 400);
  await put(opened.store, f);
  await opened.store.reference(f.record.id, 'c1');
  const again = opened.reopen!();
  assert.equal(await again.get(f.record.id), f.record);
  assert.ok((await again.data(f.record.id))?.equals(f.data));
  assert.equal(await again.referencedBy(f.record.id), ['c1']);
  assert.is(await put(again, file('ann', 700)), 'user-quota', 'its bytes still count');
});

test.run();
