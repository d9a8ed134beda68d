// API keys in Redis, so every node sees an issue or a revocation at once:
// a hash of records by id, a hash from secret-hash to id, usage per key.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ApiKeyRecord, type ApiKeys, type KeyUsage } from '../store.js';
import type { Keys } from './keys.js';

const Stored = ApiKeyRecord.extend({ hash: z.string() });
const count = (v: string | undefined) => Number(v ?? 0);

export class RedisApiKeys implements ApiKeys {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async add(record: ApiKeyRecord, hash: string): Promise<void> {
    await this.redis.multi().hset(this.keys.apiKeys, record.id, JSON.stringify({ ...record, hash })).hset(this.keys.apiKeyHashes, hash, record.id).exec();
  }

  async byHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const id = await this.redis.hget(this.keys.apiKeyHashes, hash);
    const json = id === null ? null : await this.redis.hget(this.keys.apiKeys, id);
    if (json === null) return undefined;
    const { hash: _stored, ...record } = Stored.parse(JSON.parse(json));
    return record;
  }

  async list(): Promise<Array<ApiKeyRecord & { usage: KeyUsage }>> {
    const records = Object.values(await this.redis.hgetall(this.keys.apiKeys)).map((json) => Stored.parse(JSON.parse(json)));
    return Promise.all(
      records.map(async ({ hash: _stored, ...record }) => {
        const u = await this.redis.hgetall(this.keys.apiKeyUsage(record.id));
        return { ...record, usage: { requests: count(u.requests), promptTokens: count(u.promptTokens), completionTokens: count(u.completionTokens) } };
      }),
    );
  }

  async revoke(id: string): Promise<boolean> {
    const json = await this.redis.hget(this.keys.apiKeys, id);
    if (json === null) return false;
    const { hash } = Stored.parse(JSON.parse(json));
    await this.redis.multi().hdel(this.keys.apiKeys, id).hdel(this.keys.apiKeyHashes, hash).del(this.keys.apiKeyUsage(id)).exec();
    return true;
  }

  async addUsage(id: string, usage: { promptTokens: number; completionTokens: number }): Promise<void> {
    // A key revoked meanwhile gets no usage key back (nothing would ever delete it).
    if (!(await this.redis.hexists(this.keys.apiKeys, id))) return;
    const key = this.keys.apiKeyUsage(id);
    await this.redis.multi().hincrby(key, 'requests', 1).hincrby(key, 'promptTokens', usage.promptTokens).hincrby(key, 'completionTokens', usage.completionTokens).exec();
  }
}
