// Uploaded files in this process's memory (STORE=memory), bounded per user
// and in all, forgotten at their expiry.
import type { AttachmentLimits, AttachmentRecord, AttachmentRefusal, AttachmentStore } from '../store.js';

interface Item {
  record: AttachmentRecord;
  data: Buffer;
  conversations: Set<string>;
}

export class MemoryAttachments implements AttachmentStore {
  /** In upload order, which (one TTL for all) is expiry order: the sweep stops at the first live one. */
  private readonly items = new Map<string, Item>();
  private readonly byUser = new Map<string, { ids: Set<string>; bytes: number }>();
  private total = 0;

  constructor(
    private readonly limits: AttachmentLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async put(record: AttachmentRecord, data: Buffer): Promise<'stored' | AttachmentRefusal> {
    this.sweep();
    const mine = this.byUser.get(record.userId) ?? { ids: new Set<string>(), bytes: 0 };
    if (mine.ids.size >= this.limits.userCount || mine.bytes + record.bytes > this.limits.userBytes) return 'user-quota';
    if (this.total + record.bytes > this.limits.totalBytes) return 'full';
    this.items.set(record.id, { record, data, conversations: new Set() });
    mine.ids.add(record.id);
    mine.bytes += record.bytes;
    this.byUser.set(record.userId, mine);
    this.total += record.bytes;
    return 'stored';
  }

  async get(id: string): Promise<AttachmentRecord | undefined> {
    return this.live(id)?.record;
  }

  async data(id: string): Promise<Buffer | undefined> {
    return this.live(id)?.data;
  }

  async reference(id: string, conversationId: string): Promise<void> {
    this.live(id)?.conversations.add(conversationId);
  }

  async referencedBy(id: string): Promise<string[]> {
    return [...(this.live(id)?.conversations ?? [])];
  }

  async ofUser(userId: string): Promise<AttachmentRecord[]> {
    return this.userItems(userId)
      .filter((item) => this.isLive(item))
      .map((item) => item.record)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async removeUser(userId: string): Promise<number> {
    const items = this.userItems(userId);
    for (const { record } of items) {
      this.items.delete(record.id);
      this.total -= record.bytes;
    }
    this.byUser.delete(userId);
    // Expired files go too (their bytes are still counted), but only the live ones were the user's to lose.
    return items.filter((item) => this.isLive(item)).length;
  }

  /** The user's files held, expired or not (one TTL is not assumed: the sweep may stop before an expired one). */
  private userItems(userId: string): Item[] {
    this.sweep();
    const ids = this.byUser.get(userId)?.ids ?? [];
    return [...ids].flatMap((id) => this.items.get(id) ?? []);
  }

  private isLive(item: Item): boolean {
    return item.record.expiresAt > this.now();
  }

  private live(id: string): Item | undefined {
    // Every read frees what has expired (the sweep stops at the first live file), not only the next upload.
    this.sweep();
    const item = this.items.get(id);
    return item && this.isLive(item) ? item : undefined;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, { record }] of this.items) {
      if (record.expiresAt > now) return;
      this.items.delete(id);
      this.total -= record.bytes;
      const mine = this.byUser.get(record.userId);
      if (!mine) continue;
      mine.ids.delete(id);
      mine.bytes -= record.bytes;
      if (mine.ids.size === 0) this.byUser.delete(record.userId);
    }
  }
}
