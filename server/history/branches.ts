// A conversation as a tree: every message names the one before it on its
// branch (`parentId`), edits and regenerations add siblings, and one path from
// the start to a leaf is active for every member. The leaf is state the store
// keeps beside history (it moves with each new message, reply start and
// switch); everything shown or sent upstream is derived here from the entries
// and that leaf, the same way on every backend.
import type { HistoryMessage, Siblings } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import { toolResultId, type HistoryEntry } from './fold.js';
import type { EventInput } from '../backend/store.js';

/** What the tree needs of an entry: history entries and the reply in flight both have it. */
export interface Node {
  id: string;
  parentId?: string | undefined;
}

/**
 * Entries written before messages had parents (no leaf was ever recorded):
 * each follows the one before it, as history was then a single line.
 */
export function linkLegacy(entries: readonly HistoryEntry[]): HistoryEntry[] {
  return entries.map((e, i) => (i === 0 || e.message.parentId !== undefined ? e : { ...e, message: { ...e.message, parentId: entries[i - 1]!.message.id } }));
}

/** The leaf a conversation without a recorded one has: its newest entry (a history of one line). */
export function leafOf(entries: readonly HistoryEntry[], leaf: string | undefined): string | undefined {
  return leaf ?? entries.at(-1)?.message.id;
}

/** The id a message, a tool result or a reply's start places in the tree. */
export function placedId(event: EventInput): string | undefined {
  if (event.type === 'message') return event.message.id;
  if (event.type === 'tool.result') return toolResultId(event.replyId, event.toolCallId);
  if (event.type === 'reply.start') return event.replyId;
  return undefined;
}

/**
 * Give a placed event its parent: an explicit one (an edit's, a regenerated
 * reply's), else the leaf, the end of the active path.
 */
export function setParent(event: EventInput, explicit: Placement | undefined, leaf: string | undefined): void {
  const parentId = explicit ? explicit.parentId : leaf;
  if (event.type === 'message') event.message.parentId = parentId;
  else if (event.type === 'tool.result' || event.type === 'reply.start') event.parentId = parentId;
  // Left out rather than undefined, so the JSON members get is the same on every backend.
  if (parentId !== undefined) return;
  if (event.type === 'message') delete event.message.parentId;
  else if (event.type === 'tool.result' || event.type === 'reply.start') delete event.parentId;
}

/** Where an edit's message or a regenerated reply goes: beside the one it replaces (no parent: it begins the conversation). */
export interface Placement {
  parentId: string | undefined;
}

/** Each parent's children, oldest first ('' keys the messages that begin the conversation). */
function childrenOf(entries: readonly HistoryEntry[]): Map<string, string[]> {
  const children = new Map<string, string[]>();
  for (const { message } of entries) {
    const key = message.parentId ?? '';
    const list = children.get(key);
    if (list) list.push(message.id);
    else children.set(key, [message.id]);
  }
  return children;
}

/**
 * The entries of the active path, oldest first. `inFlight` is the reply
 * streaming now, not in history yet: the path runs through it to its parent
 * (it is the leaf, or the parent of messages sent while it streams). A
 * conversation with no leaf recorded (written before branches) is one line.
 */
export function onPath<T extends HistoryEntry>(entries: readonly T[], leaf: string | undefined, inFlight?: Node): T[] {
  if (leaf === undefined) return [...entries];
  const messages = new Map(entries.map((e) => [e.message.id, e]));
  const through = (id: string | undefined) => (id !== undefined && id === inFlight?.id ? inFlight.parentId : id);
  let at = through(leaf);
  if (at === undefined || !messages.has(at)) at = entries.at(-1)?.message.id;
  const path: T[] = [];
  // A parent pruned from history ends the path there; the bound guards against a cycle in bad data.
  while (at !== undefined && path.length < entries.length) {
    const entry = messages.get(at);
    if (!entry) break;
    path.push(entry);
    at = through(entry.message.parentId);
  }
  return path.reverse();
}

/** The active path as members see it: each message with its place among its siblings. */
export function activePath(entries: readonly HistoryEntry[], leaf: string | undefined, inFlight?: Node): HistoryMessage[] {
  const children = childrenOf(entries);
  return onPath(entries, leaf, inFlight).map(({ message }) => {
    const family = leaf === undefined ? [message.id] : (children.get(message.parentId ?? '') ?? [message.id]);
    return { ...message, siblings: { index: family.indexOf(message.id), count: family.length, ...(family.length > 1 ? { ids: [...family] } : {}) } };
  });
}

/** Where a switch to `messageId` leads: down its newest children to the end of its branch. */
export function newestDescendant(entries: readonly HistoryEntry[], messageId: string): string {
  const children = childrenOf(entries);
  let at = messageId;
  for (let hops = 0; hops < entries.length; hops++) {
    const next = children.get(at)?.at(-1);
    if (next === undefined) break;
    at = next;
  }
  return at;
}

/**
 * Which entries go when history holds more than `limit`: the oldest of the
 * branches nobody is on first, then the oldest of the active path.
 */
export function toPrune<T extends HistoryEntry>(entries: readonly T[], leaf: string | undefined, limit: number, inFlight?: Node): T[] {
  const excess = entries.length - limit;
  if (excess <= 0) return [];
  const active = new Set(onPath(entries, leaf, inFlight));
  return [...entries.filter((e) => !active.has(e)), ...entries.filter((e) => active.has(e))].slice(0, excess);
}

/** The place a new message or reply takes beside those already under `parentId`. */
export function nextSibling(sibling: HistoryMessage): Siblings {
  const count = (sibling.siblings?.count ?? 1) + 1;
  return { index: count - 1, count };
}

/** What a regenerate answers again, and where its reply goes. */
export interface Regeneration {
  /** The user message answered. */
  question: HistoryMessage;
  /** The new reply's parent, and its place beside the earlier answers. */
  parentId: string;
  siblings: Siblings | undefined;
}

/**
 * A regenerate of `messageId` on the active path: a user message is answered
 * again; a reply is replaced by a new answer to the user message that started
 * it (through the steps of a tool loop). Without an id, the last user message.
 */
export function regeneration(path: readonly HistoryMessage[], messageId: string | undefined): Regeneration {
  const find = (id: string) => path.find((m) => m.id === id);
  let question = messageId === undefined ? path.findLast((m) => m.role === 'user') : find(messageId);
  // A reply (or a step of its tool loop) is replaced by a new answer to the question that began it.
  for (let hops = 0; question?.role === 'assistant' && question.inReplyTo !== undefined && hops < path.length; hops++) question = find(question.inReplyTo);
  if (!question || question.role !== 'user') {
    throw new RelayError('not_found', messageId ? `no message ${messageId} to answer again on the active path` : 'no user message to answer again');
  }
  const answer = path.find((m) => m.role === 'assistant' && m.inReplyTo === question.id);
  if (answer?.parentId === undefined) return { question, parentId: question.id, siblings: undefined };
  return { question, parentId: answer.parentId, siblings: nextSibling(answer) };
}

/** The user message an edit replaces, on the active path. */
export function editTarget(path: readonly HistoryMessage[], messageId: string): HistoryMessage {
  const message = path.find((m) => m.id === messageId);
  if (!message || message.role !== 'user') throw new RelayError('not_found', `no user message ${messageId} to edit on the active path`);
  return message;
}
