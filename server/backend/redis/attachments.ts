// Uploaded files in Redis, shared by every node: each a hash that expires
// with the file; the owner's and the store's totals are checked and counted
// in one script with the write, so two nodes cannot both take the last room.
import type { Redis } from 'ioredis';
import { AttachmentRecord, type AttachmentLimits, type AttachmentRefusal, type AttachmentStore } from '../store.js';
import type { Keys } from './keys.js';
import { Script } from './script.js';

/** Expired files whose bytes one upload takes off the store's total (the rest on later uploads). */
const SWEEP_PER_PUT = 1_000;

const put = new Script(
  ['item', 'user', 'expiry', 'sizes', 'total'],
  ['id', 'record', 'data', 'bytes', 'expiresAt', 'now', 'userBytes', 'userCount', 'totalBytes', 'sweep'],
  `
local now = tonumber(A.now)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.expiry, '-inf', now, 'LIMIT', 0, tonumber(A.sweep))) do
  redis.call('DECRBY', K.total, tonumber(redis.call('HGET', K.sizes, id) or '0'))
  redis.call('HDEL', K.sizes, id)
  redis.call('ZREM', K.expiry, id)
end
-- The owner's files: id -> "bytes:expiresAt"; the expired ones go now.
local held, count = 0, 0
local mine = redis.call('HGETALL', K.user)
for i = 1, #mine, 2 do
  local bytes, expires = string.match(mine[i + 1], '^(%d+):(%d+)$')
  if tonumber(expires) <= now then
    redis.call('HDEL', K.user, mine[i])
  else
    held = held + tonumber(bytes)
    count = count + 1
  end
end
local bytes = tonumber(A.bytes)
if count >= tonumber(A.userCount) or held + bytes > tonumber(A.userBytes) then return 'user-quota' end
if tonumber(redis.call('GET', K.total) or '0') + bytes > tonumber(A.totalBytes) then return 'full' end
redis.call('HSET', K.item, 'r', A.record, 'd', A.data)
redis.call('PEXPIREAT', K.item, A.expiresAt)
redis.call('HSET', K.user, A.id, A.bytes .. ':' .. A.expiresAt)
redis.call('PEXPIREAT', K.user, A.expiresAt)
redis.call('ZADD', K.expiry, A.expiresAt, A.id)
redis.call('HSET', K.sizes, A.id, A.bytes)
redis.call('INCRBY', K.total, bytes)
return 'stored'
`,
);

// The items' keys are built here from their ids, outside KEYS: this needs the
// single Redis primary the store requires anyway (keys.ts), not a Cluster.
const removeUser = new Script(
  ['user', 'expiry', 'sizes', 'total'],
  ['itemPrefix'],
  `
local live = 0
for _, id in ipairs(redis.call('HKEYS', K.user)) do
  -- DEL answers 0 for a file already expired: it is erased all the same, but was no longer the user's.
  live = live + redis.call('DEL', A.itemPrefix .. id)
  -- A file the sweep took already had its bytes taken off: only those still sized count down.
  local size = redis.call('HGET', K.sizes, id)
  if size then
    redis.call('DECRBY', K.total, tonumber(size))
    redis.call('HDEL', K.sizes, id)
  end
  redis.call('ZREM', K.expiry, id)
end
redis.call('DEL', K.user)
return live
`,
);

const REF = 'c:';

export class RedisAttachments implements AttachmentStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly limits: AttachmentLimits,
  ) {}

  async put(record: AttachmentRecord, data: Buffer): Promise<'stored' | AttachmentRefusal> {
    const { userBytes, userCount, totalBytes } = this.limits;
    const args = { id: record.id, record: JSON.stringify(record), data, bytes: record.bytes, expiresAt: record.expiresAt, now: Date.now(), userBytes, userCount, totalBytes, sweep: SWEEP_PER_PUT };
    const result = await put.run(this.redis, this.keys.attachments(record.id, record.userId), args);
    if (result === 'stored' || result === 'user-quota' || result === 'full') return result;
    throw new Error('unexpected attachment put result');
  }

  async get(id: string): Promise<AttachmentRecord | undefined> {
    const json = await this.redis.hget(this.keys.attachment(id), 'r');
    return json === null ? undefined : AttachmentRecord.parse(JSON.parse(json));
  }

  async data(id: string): Promise<Buffer | undefined> {
    return (await this.redis.hgetBuffer(this.keys.attachment(id), 'd')) ?? undefined;
  }

  async reference(id: string, conversationId: string): Promise<void> {
    const record = await this.get(id);
    if (!record) return;
    // Expiring at the file's own time: a reference written just as it expired leaves nothing behind.
    await this.redis.multi().hset(this.keys.attachment(id), REF + conversationId, '1').pexpireat(this.keys.attachment(id), record.expiresAt).exec();
  }

  async referencedBy(id: string): Promise<string[]> {
    const fields = await this.redis.hkeys(this.keys.attachment(id));
    return fields.filter((f) => f.startsWith(REF)).map((f) => f.slice(REF.length));
  }

  async ofUser(userId: string): Promise<AttachmentRecord[]> {
    const ids = await this.redis.hkeys(this.userKeys(userId).user);
    const read = this.redis.pipeline();
    for (const id of ids) read.hget(this.keys.attachment(id), 'r');
    const records = ((await read.exec()) ?? []).flatMap(([err, json]) => {
      if (err) throw err;
      // An expired file's hash is gone while the owner's entry may linger until their next upload.
      return typeof json === 'string' ? [AttachmentRecord.parse(JSON.parse(json))] : [];
    });
    return records.sort((a, b) => a.createdAt - b.createdAt);
  }

  async removeUser(userId: string): Promise<number> {
    const removed = await removeUser.run(this.redis, this.userKeys(userId), { itemPrefix: this.keys.attachment('') });
    if (typeof removed === 'number') return removed;
    throw new Error('unexpected attachment removeUser result');
  }

  /** The owner's and the store's keys, which no one file's id names (keys.ts derives them beside a file's). */
  private userKeys(userId: string): Record<'user' | 'expiry' | 'sizes' | 'total', string> {
    const { user, expiry, sizes, total } = this.keys.attachments('', userId);
    return { user, expiry, sizes, total };
  }
}
