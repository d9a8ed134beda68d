// The SQLite database of the embedded store: one file in DATA_DIR, opened by
// one process only. WAL with synchronous=NORMAL: a committed write survives
// the process being killed (it is in the WAL before the call returns); a
// power cut may lose the last commits. The exclusive lock is SQLite's own file
// lock, released by the operating system when the process dies, so a restart
// after kill -9 is never refused, while a second process is.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config.js';

export type Db = Database.Database;

/** Runs a step in one transaction (nested in another: a savepoint). */
export type Atomically = <T>(step: () => T) => T;

/** Built once per user of the database: building a transaction wrapper costs more than a small write. */
export function transactor(db: Db): Atomically {
  const run = db.transaction((step: () => void) => step());
  return <T>(step: () => T): T => {
    let result!: T;
    run(() => {
      result = step();
    });
    return result;
  };
}

/** The layout this code reads and writes; a file of another is refused. */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  last_active INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_by_activity ON conversations (last_active);
-- Retained events in runs (runs.ts): a row holds the events seq..last_seq, one per line (JSON
-- has no raw newline), the first one's offset, the time the run was written, and the reply
-- its shortened deltas belong to.
CREATE TABLE IF NOT EXISTS events (
  conversation TEXT NOT NULL,
  seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  reply_id TEXT,
  json TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_conversation ON events (conversation, seq);
CREATE TABLE IF NOT EXISTS history (
  conversation TEXT NOT NULL,
  start_seq INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (conversation, start_seq)
) WITHOUT ROWID;
-- What a conversation keeps beside history: the end of its active path, and its own settings.
CREATE TABLE IF NOT EXISTS conversation_state (
  conversation TEXT PRIMARY KEY,
  leaf TEXT,
  settings TEXT NOT NULL,
  owner TEXT,
  roles TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
-- Each user's conversation list: where they last saw each, and when they were last in it.
CREATE TABLE IF NOT EXISTS user_conversations (
  user_id TEXT NOT NULL,
  conversation TEXT NOT NULL,
  seen_seq INTEGER NOT NULL,
  visited_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, conversation)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_conversations_by_conversation ON user_conversations (conversation);
CREATE INDEX IF NOT EXISTS user_conversations_by_visit ON user_conversations (user_id, visited_at);
-- Deleted conversations, so that nothing writes them again and a resume answers not_found.
CREATE TABLE IF NOT EXISTS deleted_conversations (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_ids (
  conversation TEXT NOT NULL,
  client_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (conversation, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replies (
  conversation TEXT NOT NULL,
  reply_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  job TEXT NOT NULL,
  PRIMARY KEY (conversation, reply_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ledger (
  reply_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (at);
CREATE INDEX IF NOT EXISTS ledger_by_user ON ledger (user_id, at);
CREATE TABLE IF NOT EXISTS attachments (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  record TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_by_user ON attachments (user_id, bytes);
CREATE INDEX IF NOT EXISTS attachments_by_expiry ON attachments (expires_at);
CREATE TABLE IF NOT EXISTS attachment_refs (
  attachment TEXT NOT NULL,
  conversation TEXT NOT NULL,
  PRIMARY KEY (attachment, conversation)
) WITHOUT ROWID;
`;

export class StoreLockedError extends ConfigError {
  override name = 'StoreLockedError';
}

/** What SQLite says when it cannot get a lock another connection holds. */
function isBusy(err: unknown): boolean {
  const code = sqliteCode(err);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/**
 * Open (creating them on first start) DATA_DIR and its database, take the
 * exclusive lock, and cap the file at `maxBytes` (writes past it fail with
 * SQLITE_FULL, as on a full disk).
 */
export function openDb(dataDir: string, maxBytes: number): Db {
  const file = join(dataDir, 'relay.db');
  let db: Db;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(file, { timeout: 100 });
  } catch (err) {
    throw new ConfigError(`invalid configuration: DATA_DIR ${dataDir}: cannot open ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    // Exclusive before WAL: the WAL then needs no shared memory file, and no other process may open it.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -65536');
    // Taken now, held until the process ends.
    db.exec('BEGIN EXCLUSIVE; COMMIT;');
    db.exec(SCHEMA);
    checkVersion(db, dataDir);
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.pragma(`max_page_count = ${Math.max(64, Math.floor(maxBytes / pageSize))}`);
    return db;
  } catch (err) {
    db.close();
    if (isBusy(err)) throw new StoreLockedError(`DATA_DIR ${dataDir} is in use by another relay process (one process per data directory)`);
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`invalid configuration: DATA_DIR ${dataDir}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkVersion(db: Db, dataDir: string): void {
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION));
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get('schema');
  if (row !== String(SCHEMA_VERSION)) throw new ConfigError(`DATA_DIR ${dataDir} holds storage layout ${String(row)}; this relay knows only layout ${SCHEMA_VERSION}`);
}

/** Bytes the database holds in pages (its file, less the pages it has freed). */
export function usedBytes(db: Db): number {
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  const pages = Number(db.pragma('page_count', { simple: true })) - Number(db.pragma('freelist_count', { simple: true }));
  return pages * pageSize;
}

/** SQLite's result code of a failed call ('' for anything else); extended codes start with the primary one. */
function sqliteCode(err: unknown): string {
  return err instanceof Error && 'code' in err ? String(err.code) : '';
}

/** A write refused for a full disk (or the DATA_MAX_BYTES cap). */
export function isFull(err: unknown): boolean {
  return sqliteCode(err).startsWith('SQLITE_FULL');
}

/** A clear error for a failed write: a full disk (or cap), a read-only directory, or another I/O failure. */
export function describeWriteFailure(err: unknown): string {
  const code = sqliteCode(err);
  if (isFull(err)) return 'the relay could not store it: its data directory is full';
  if (code.startsWith('SQLITE_READONLY')) return 'the relay could not store it: its data directory is read-only';
  return 'the relay could not store it: writing to its data directory failed';
}
