// Each user's conversation list, in memory: the conversations they were in,
// most recently visited last (a Map keeps insertion order), bounded per user
// and in users. The summaries come from the log, so a conversation this node
// has forgotten (idle past its time) drops off the list too.
import type { ConversationSummary } from '../../../shared/protocol.js';
import { LISTED_PER_USER, type ConversationLists } from '../store.js';
import { newestFirst } from '../list-order.js';

/** Users whose lists are kept; past it the least recently active user's goes. */
const USERS_KEPT = 100_000;

/** What the list needs of a conversation, where the log still holds it. */
export interface SummarySource {
  summary(conversationId: string): Omit<ConversationSummary, 'unread'> | undefined;
}

export class MemoryLists implements ConversationLists {
  /** userId → conversationId → the seq they had seen. */
  private readonly byUser = new Map<string, Map<string, number>>();

  constructor(private readonly log: SummarySource) {}

  async visit(userId: string, conversationId: string, seenSeq: number): Promise<void> {
    let listed = this.byUser.get(userId);
    this.byUser.delete(userId);
    this.byUser.set(userId, (listed ??= new Map()));
    listed.delete(conversationId);
    listed.set(conversationId, seenSeq);
    if (listed.size > LISTED_PER_USER) listed.delete(listed.keys().next().value!);
    if (this.byUser.size > USERS_KEPT) this.byUser.delete(this.byUser.keys().next().value!);
  }

  async page(userId: string, before: number | undefined): Promise<ConversationSummary[]> {
    const listed = this.byUser.get(userId);
    if (!listed) return [];
    const summaries: ConversationSummary[] = [];
    for (const [conversationId, seen] of listed) {
      const summary = this.log.summary(conversationId);
      if (!summary) continue;
      if (before === undefined || summary.lastActivity < before) summaries.push({ ...summary, unread: summary.seq > seen });
    }
    return newestFirst(summaries);
  }

  async forgetUser(userId: string): Promise<void> {
    this.byUser.delete(userId);
  }

  /** A deleted conversation leaves every list. */
  forget(conversationId: string): void {
    for (const listed of this.byUser.values()) listed.delete(conversationId);
  }
}
