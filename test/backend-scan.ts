// Where a backend still holds a piece of text: in the store's objects in this
// process, in the embedded store's database file, and in Redis under the
// relay's prefix. A test of deletion asserts the answer is empty.
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';

/**
 * Paths into an object graph (Maps, Sets, arrays, plain objects) whose strings
 * contain `text`, and the database handles met on the way (the embedded
 * store's, which holds its file locked: it is read through its own handle).
 */
function inMemory(root: unknown, text: string): { found: string[]; databases: Set<Database.Database> } {
  const found: string[] = [];
  const databases = new Set<Database.Database>();
  const seen = new Set<unknown>();
  const walk = (value: unknown, path: string, depth: number): void => {
    if (typeof value === 'string') {
      if (value.includes(text)) found.push(path);
      return;
    }
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 12) return;
    seen.add(value);
    if (value instanceof Database) {
      databases.add(value);
      return;
    }
    if (Buffer.isBuffer(value)) return;
    // A prepared statement knows its database.
    if ('database' in value && value.database instanceof Database) databases.add(value.database);
    if (value instanceof Map) for (const [k, v] of value) walk(v, `${path}[${String(k)}]`, depth + 1);
    else if (value instanceof Set || Array.isArray(value)) [...value].forEach((v, i) => walk(v, `${path}[${i}]`, depth + 1));
    else for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`, depth + 1);
  };
  walk(root, 'store', 0);
  return { found, databases };
}

function inSqlite(db: Database.Database, text: string): string[] {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
  const found: string[] = [];
  for (const table of tables) {
    for (const row of db.prepare(`SELECT * FROM "${String(table)}"`).all()) {
      // BLOBs (attachments) are bytes, not conversation text.
      if (JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? undefined : v)).includes(text)) found.push(`sqlite ${String(table)}`);
    }
  }
  return found;
}

async function inRedis(url: string, prefix: string, text: string): Promise<string[]> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) if (JSON.stringify(await contents(redis, key)).includes(text)) found.push(`redis ${key}`);
    } while (cursor !== '0');
    return found;
  } finally {
    redis.disconnect();
  }
}

/** Everything a key holds, whatever its type. */
async function contents(redis: Redis, key: string): Promise<unknown> {
  switch (await redis.type(key)) {
    case 'string':
      return redis.get(key);
    case 'hash':
      return redis.hgetall(key);
    case 'zset':
      return redis.zrange(key, 0, -1);
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'set':
      return redis.smembers(key);
    case 'stream':
      return redis.xrange(key, '-', '+');
    default:
      return undefined;
  }
}

export interface Where {
  store: unknown;
  redis?: { url: string; prefix: string } | undefined;
}

export async function placesHolding(where: Where, text: string): Promise<string[]> {
  const memory = inMemory(where.store, text);
  return [
    ...memory.found,
    ...[...memory.databases].flatMap((db) => inSqlite(db, text)),
    ...(where.redis ? await inRedis(where.redis.url, where.redis.prefix, text) : []),
  ];
}
