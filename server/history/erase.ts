// What of a conversation's history is about one user, for a data-protection
// export or erase: their messages and tool results, and the replies that
// answered their messages (through the steps of a tool loop). An erase keeps
// each entry's place, so the tree stays whole, and takes its content.
import type { ConversationEvent, HistoryMessage } from '../../shared/protocol.js';
import { rootOf, type HistoryEntry } from './fold.js';

/** Who an erased message is shown as. */
export const ERASED_AUTHOR = { id: 'erased', name: 'erased user' } as const;

/** The messages of `entries` that are the user's, or answer theirs. */
export function concerning(messages: readonly HistoryMessage[], userId: string): HistoryMessage[] {
  const byId = new Map(messages.map((m) => [m.id, m]));
  return messages.filter((m) => (m.role === 'assistant' ? rootOf(byId, m.id).root?.author?.id === userId : m.author?.id === userId));
}

/** Who wrote an event of the clientMessageId index: a message's author, a tool result's. */
export function authorOf(event: ConversationEvent): string | undefined {
  if (event.type === 'message') return event.message.author.id;
  if (event.type === 'tool.result') return event.author.id;
  return undefined;
}

/** The entries an erase changes, each as it is to be kept. */
export function erased(entries: readonly HistoryEntry[], userId: string): HistoryEntry[] {
  const concerned = new Set(concerning(entries.map((e) => e.message), userId).map((m) => m.id));
  return entries.filter((e) => concerned.has(e.message.id) && !alreadyErased(e.message)).map((e) => ({ startSeq: e.startSeq, message: emptied(e.message) }));
}

function alreadyErased(m: HistoryMessage): boolean {
  return m.redacted === true && m.text === '' && (m.role === 'assistant' || m.author?.id === ERASED_AUTHOR.id);
}

/** Its place in the tree and how it ended stay; what was said, by whom, goes. */
function emptied(m: HistoryMessage): HistoryMessage {
  const { id, role, createdAt, parentId, inReplyTo, finishReason, model, replyId, toolCallId } = m;
  return {
    id,
    role,
    text: '',
    createdAt,
    redacted: true,
    ...(role !== 'assistant' ? { author: { ...ERASED_AUTHOR } } : {}),
    ...(parentId !== undefined ? { parentId } : {}),
    ...(inReplyTo !== undefined ? { inReplyTo } : {}),
    ...(finishReason !== undefined ? { finishReason } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(replyId !== undefined ? { replyId } : {}),
    ...(toolCallId !== undefined ? { toolCallId } : {}),
  };
}
