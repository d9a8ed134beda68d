// API keys in this process: by id, and by the hash of their secret.
import type { ApiKeyRecord, ApiKeys, KeyUsage } from '../store.js';

interface Entry {
  record: ApiKeyRecord;
  hash: string;
  usage: KeyUsage;
}

export class MemoryApiKeys implements ApiKeys {
  private readonly byId = new Map<string, Entry>();
  private readonly idByHash = new Map<string, string>();

  async add(record: ApiKeyRecord, hash: string): Promise<void> {
    this.byId.set(record.id, { record, hash, usage: { requests: 0, promptTokens: 0, completionTokens: 0 } });
    this.idByHash.set(hash, record.id);
  }

  async byHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const id = this.idByHash.get(hash);
    return id === undefined ? undefined : this.byId.get(id)?.record;
  }

  async list(): Promise<Array<ApiKeyRecord & { usage: KeyUsage }>> {
    return [...this.byId.values()].map((e) => ({ ...e.record, usage: { ...e.usage } }));
  }

  async revoke(id: string): Promise<boolean> {
    const entry = this.byId.get(id);
    if (!entry) return false;
    this.byId.delete(id);
    this.idByHash.delete(entry.hash);
    return true;
  }

  async addUsage(id: string, usage: { promptTokens: number; completionTokens: number }): Promise<void> {
    const u = this.byId.get(id)?.usage;
    if (!u) return;
    u.requests += 1;
    u.promptTokens += usage.promptTokens;
    u.completionTokens += usage.completionTokens;
  }
}
