// The conversations this node holds in memory, created on first use and
// evicted once idle with no member and no reply.
import { Conversation, type ConversationDeps } from './conversation.js';

export class Conversations {
  private readonly byId = new Map<string, Conversation>();

  constructor(private readonly deps: Omit<ConversationDeps, 'onIdle'>) {}

  get(id: string): Conversation {
    let c = this.byId.get(id);
    if (!c) {
      c = new Conversation(id, { ...this.deps, onIdle: (idle) => void this.evict(idle) });
      this.byId.set(id, c);
    }
    return c;
  }

  find(id: string): Conversation | undefined {
    return this.byId.get(id);
  }

  private async evict(c: Conversation): Promise<void> {
    if (this.byId.get(c.id) !== c) return;
    this.byId.delete(c.id);
    c.dispose();
    await this.deps.store.evict(c.id);
    this.deps.log.debug({ conversationId: c.id }, 'conversation evicted');
  }

  get size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<Conversation> {
    return this.byId.values();
  }
}
