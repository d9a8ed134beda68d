// The conversations this node holds in memory, created on first use and
// evicted once idle with no member and no reply here. With a shared store it
// also looks, now and then, for conversations whose lease holder died and
// members who went with it.
import type { ConversationSummary } from '../../shared/protocol.js';
import { firstPage } from '../backend/list-order.js';
import { Conversation, type ConversationDeps } from './conversation.js';

export interface ConversationsDeps extends Omit<ConversationDeps, 'onIdle'> {
  /** How often to look for orphaned conversations (0: never, one node). */
  adoptEveryMs: number;
}

export class Conversations {
  private readonly byId = new Map<string, Conversation>();
  private readonly adopter: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ConversationsDeps) {
    if (deps.adoptEveryMs > 0) {
      this.adopter = setInterval(() => {
        for (const c of this.byId.values()) {
          c.checkCluster().catch((err: unknown) => deps.log.warn({ err, conversationId: c.id }, 'cluster check failed'));
        }
      }, deps.adoptEveryMs);
    }
  }

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

  /** A page of the user's conversation list, newest activity first, and the `before` of the next. */
  async list(userId: string, before: number | undefined, limit: number): Promise<{ conversations: ConversationSummary[]; next?: number }> {
    const page = firstPage(await this.deps.store.lists.page(userId, before), limit);
    // Where the user is a member right now (on any socket, any node), they see everything as it comes.
    await Promise.all(
      page.conversations
        .filter((c) => c.unread)
        .map(async (c) => {
          if ((await this.deps.store.members.list(c.conversationId)).some((u) => u.id === userId)) c.unread = false;
        }),
    );
    return page;
  }


  private async evict(c: Conversation): Promise<void> {
    if (this.byId.get(c.id) !== c) return;
    this.byId.delete(c.id);
    c.dispose();
    try {
      await this.deps.store.log.evict(c.id);
    } catch (err) {
      this.deps.log.warn({ err, conversationId: c.id }, 'eviction failed');
    }
    this.deps.log.debug({ conversationId: c.id }, 'conversation evicted');
  }

  get size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<Conversation> {
    return this.byId.values();
  }

  close(): void {
    clearInterval(this.adopter);
    for (const c of this.byId.values()) c.dispose();
  }
}
