// Operator API keys in the embedded store: the same contract as in memory and
// on Redis, kept across restarts.
import { z } from 'zod';
import { ApiKeyRecord, type ApiKeys, type KeyUsage } from '../store.js';
import type { Db } from './db.js';

const Row = z.object({ record: z.string(), requests: z.number(), promptTokens: z.number(), completionTokens: z.number() });

export class SqliteApiKeys implements ApiKeys {
  private readonly sql;

  constructor(db: Db) {
    this.sql = {
      add: db.prepare('INSERT INTO api_keys (id, hash, record) VALUES (?, ?, ?)'),
      byHash: db.prepare('SELECT record FROM api_keys WHERE hash = ?').pluck(),
      list: db.prepare('SELECT record, requests, prompt_tokens AS promptTokens, completion_tokens AS completionTokens FROM api_keys ORDER BY rowid'),
      revoke: db.prepare('DELETE FROM api_keys WHERE id = ?'),
      addUsage: db.prepare('UPDATE api_keys SET requests = requests + 1, prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? WHERE id = ?'),
    };
  }

  async add(record: ApiKeyRecord, hash: string): Promise<void> {
    this.sql.add.run(record.id, hash, JSON.stringify(record));
  }

  async byHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const json = this.sql.byHash.get(hash);
    return typeof json === 'string' ? ApiKeyRecord.parse(JSON.parse(json)) : undefined;
  }

  async list(): Promise<Array<ApiKeyRecord & { usage: KeyUsage }>> {
    return z
      .array(Row)
      .parse(this.sql.list.all())
      .map(({ record, ...usage }) => ({ ...ApiKeyRecord.parse(JSON.parse(record)), usage }));
  }

  async revoke(id: string): Promise<boolean> {
    return this.sql.revoke.run(id).changes > 0;
  }

  async addUsage(id: string, usage: { promptTokens: number; completionTokens: number }): Promise<void> {
    this.sql.addUsage.run(usage.promptTokens, usage.completionTokens, id);
  }
}
