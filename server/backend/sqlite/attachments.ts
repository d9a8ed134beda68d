// Uploaded files in the embedded store: kept across restarts until their
// expiry, within the per-user and total bounds (and DATA_MAX_BYTES, which a
// full database reports as `full`).
import { z } from 'zod';
import { AttachmentRecord, type AttachmentLimits, type AttachmentRefusal, type AttachmentStore } from '../store.js';
import { isFull, transactor, type Atomically, type Db } from './db.js';

const Totals = z.object({ count: z.number(), bytes: z.number().nullable() });
const Bytes = z.array(z.number());
const Removed = z.array(z.object({ bytes: z.number(), expires_at: z.number() }));

export class SqliteAttachments implements AttachmentStore {
  private readonly sql;
  private readonly atomically: Atomically;
  /** Bytes of every file held: this process alone writes the database, so it is counted here, not summed per upload. */
  private total: number;

  constructor(
    db: Db,
    private readonly limits: AttachmentLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.atomically = transactor(db);
    this.sql = {
      expiredRefs: db.prepare('DELETE FROM attachment_refs WHERE attachment IN (SELECT id FROM attachments WHERE expires_at <= ?)'),
      expired: db.prepare('DELETE FROM attachments WHERE expires_at <= ? RETURNING bytes').pluck(),
      ofUser: db.prepare('SELECT count(*) AS count, sum(bytes) AS bytes FROM attachments WHERE user_id = ?'),
      insert: db.prepare('INSERT INTO attachments (id, user_id, bytes, expires_at, record, data) VALUES (?, ?, ?, ?, ?, ?)'),
      record: db.prepare('SELECT record FROM attachments WHERE id = ? AND expires_at > ?').pluck(),
      data: db.prepare('SELECT data FROM attachments WHERE id = ? AND expires_at > ?').pluck(),
      reference: db.prepare('INSERT OR IGNORE INTO attachment_refs (attachment, conversation) SELECT id, ? FROM attachments WHERE id = ? AND expires_at > ?'),
      refs: db.prepare('SELECT conversation FROM attachment_refs WHERE attachment = ?').pluck(),
      userRecords: db.prepare("SELECT record FROM attachments WHERE user_id = ? AND expires_at > ? ORDER BY json_extract(record, '$.createdAt'), rowid").pluck(),
      userRefs: db.prepare('DELETE FROM attachment_refs WHERE attachment IN (SELECT id FROM attachments WHERE user_id = ?)'),
      userFiles: db.prepare('DELETE FROM attachments WHERE user_id = ? RETURNING bytes, expires_at'),
    };
    this.total = Number(db.prepare('SELECT coalesce(sum(bytes), 0) FROM attachments').pluck().get());
  }

  /** Drop the expired files (at each upload, and with the store's retention sweep). */
  sweep(now = this.now()): void {
    this.atomically(() => {
      this.sql.expiredRefs.run(now);
      for (const bytes of Bytes.parse(this.sql.expired.all(now))) this.total -= bytes;
    });
  }

  async put(record: AttachmentRecord, data: Buffer): Promise<'stored' | AttachmentRefusal> {
    try {
      return this.atomically(() => {
        this.sweep();
        const mine = Totals.parse(this.sql.ofUser.get(record.userId));
        if (mine.count >= this.limits.userCount || (mine.bytes ?? 0) + record.bytes > this.limits.userBytes) return 'user-quota';
        if (this.total + record.bytes > this.limits.totalBytes) return 'full';
        this.sql.insert.run(record.id, record.userId, record.bytes, record.expiresAt, JSON.stringify(record), data);
        this.total += record.bytes;
        return 'stored';
      });
    } catch (err) {
      if (isFull(err)) return 'full';
      throw err;
    }
  }

  async get(id: string): Promise<AttachmentRecord | undefined> {
    const json = this.sql.record.get(id, this.now());
    return typeof json === 'string' ? AttachmentRecord.parse(JSON.parse(json)) : undefined;
  }

  async data(id: string): Promise<Buffer | undefined> {
    const data = this.sql.data.get(id, this.now());
    return Buffer.isBuffer(data) ? data : undefined;
  }

  async reference(id: string, conversationId: string): Promise<void> {
    this.sql.reference.run(conversationId, id, this.now());
  }

  async referencedBy(id: string): Promise<string[]> {
    return z.array(z.string()).parse(this.sql.refs.all(id));
  }

  async ofUser(userId: string): Promise<AttachmentRecord[]> {
    const rows = z.array(z.string()).parse(this.sql.userRecords.all(userId, this.now()));
    return rows.map((json) => AttachmentRecord.parse(JSON.parse(json)));
  }

  async removeUser(userId: string): Promise<number> {
    const removed = this.atomically(() => {
      this.sql.userRefs.run(userId);
      return Removed.parse(this.sql.userFiles.all(userId));
    });
    // Taken off only once committed: a failed erase leaves the files, so their bytes still count.
    for (const { bytes } of removed) this.total -= bytes;
    // Expired files not yet swept go too (their bytes were still counted), but only the live ones were the user's to lose.
    const now = this.now();
    return removed.filter((row) => row.expires_at > now).length;
  }
}
