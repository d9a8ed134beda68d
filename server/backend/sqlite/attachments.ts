// Uploaded files in the embedded store: kept across restarts until their
// expiry, within the per-user and total bounds (and DATA_MAX_BYTES, which a
// full database reports as `full`).
import { z } from 'zod';
import { AttachmentRecord, type AttachmentLimits, type AttachmentRefusal, type AttachmentStore } from '../store.js';
import { transactor, type Atomically, type Db } from './db.js';

const Totals = z.object({ count: z.number(), bytes: z.number().nullable() });

export class SqliteAttachments implements AttachmentStore {
  private readonly sql;
  private readonly atomically: Atomically;

  constructor(
    db: Db,
    private readonly limits: AttachmentLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.atomically = transactor(db);
    this.sql = {
      expiredRefs: db.prepare('DELETE FROM attachment_refs WHERE attachment IN (SELECT id FROM attachments WHERE expires_at <= ?)'),
      expired: db.prepare('DELETE FROM attachments WHERE expires_at <= ?'),
      ofUser: db.prepare('SELECT count(*) AS count, sum(bytes) AS bytes FROM attachments WHERE user_id = ?'),
      total: db.prepare('SELECT sum(bytes) FROM attachments').pluck(),
      insert: db.prepare('INSERT INTO attachments (id, user_id, bytes, expires_at, record, data) VALUES (?, ?, ?, ?, ?, ?)'),
      record: db.prepare('SELECT record FROM attachments WHERE id = ? AND expires_at > ?').pluck(),
      data: db.prepare('SELECT data FROM attachments WHERE id = ? AND expires_at > ?').pluck(),
      reference: db.prepare('INSERT OR IGNORE INTO attachment_refs (attachment, conversation) SELECT id, ? FROM attachments WHERE id = ? AND expires_at > ?'),
      refs: db.prepare('SELECT conversation FROM attachment_refs WHERE attachment = ?').pluck(),
    };
  }

  async put(record: AttachmentRecord, data: Buffer): Promise<'stored' | AttachmentRefusal> {
    try {
      return this.atomically(() => {
        const now = this.now();
        this.sql.expiredRefs.run(now);
        this.sql.expired.run(now);
        const mine = Totals.parse(this.sql.ofUser.get(record.userId));
        if (mine.count >= this.limits.userCount || (mine.bytes ?? 0) + record.bytes > this.limits.userBytes) return 'user-quota';
        if (Number(this.sql.total.get() ?? 0) + record.bytes > this.limits.totalBytes) return 'full';
        this.sql.insert.run(record.id, record.userId, record.bytes, record.expiresAt, JSON.stringify(record), data);
        return 'stored';
      });
    } catch (err) {
      if (err instanceof Error && 'code' in err && String(err.code).startsWith('SQLITE_FULL')) return 'full';
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
}
