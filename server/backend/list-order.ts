// The order of a user's conversation list, and how it is cut into pages: the
// same for every backend.
import type { ConversationSummary } from '../../shared/protocol.js';

/** By last activity, newest first (ties by id). */
export function newestFirst(summaries: ConversationSummary[]): ConversationSummary[] {
  return summaries.sort((a, b) => b.lastActivity - a.lastActivity || a.conversationId.localeCompare(b.conversationId));
}

/**
 * The first `limit` of a list sorted newest first, and the `before` of the
 * page after it. Conversations as old as the last one come along, so the next
 * page (strictly older) neither repeats nor skips one.
 */
export function firstPage(sorted: readonly ConversationSummary[], limit: number): { conversations: ConversationSummary[]; next?: number } {
  let end = Math.min(limit, sorted.length);
  while (end > 0 && end < sorted.length && sorted[end]!.lastActivity === sorted[end - 1]!.lastActivity) end++;
  const conversations = sorted.slice(0, end);
  return end < sorted.length ? { conversations, next: conversations.at(-1)!.lastActivity } : { conversations };
}
