// The in-memory Store: zero setup, one node. Its parts live in one process,
// so submit's step across them is atomic by being synchronous. The embedded
// durable store is this one with a journal and durable parts beneath it.
import { entryKey } from '../../history/fold.js';
import type { Placement } from '../../history/branches.js';
import type { ApiKeys, ConversationLists, EntryInput, ReplyJob, Store, StoreLimits, Submission, UsageLedger } from '../store.js';
import { MemoryLists } from './lists.js';
import { MemoryApiKeys } from './api-keys.js';
import { MemoryLedger } from './ledger.js';
import { MemoryLog, type LogJournal } from './log.js';
import { MemoryMembers } from './members.js';
import { MemoryReplies } from './replies.js';

/** What a durable backend puts under the in-memory parts (server/backend/sqlite). */
export interface DurableParts {
  journal: LogJournal;
  replies: MemoryReplies;
  lists: ListsPart;
  apiKeys: ApiKeys;
  ledger: UsageLedger;
  close(): Promise<void>;
}

/** A backend's lists, which also drop a deleted conversation. */
export interface ListsPart extends ConversationLists {
  forget(conversationId: string): void;
}

export class MemoryStore implements Store {
  readonly log: MemoryLog;
  readonly lists: ListsPart;
  readonly ids: MemoryLog;
  readonly replies: MemoryReplies;
  readonly members = new MemoryMembers();
  readonly apiKeys: ApiKeys;
  readonly ledger: UsageLedger;

  constructor(
    limits: StoreLimits,
    private readonly durable?: DurableParts,
  ) {
    // A durable store brings its own ledger (written by its journal); only the in-memory store keeps one here.
    let own: MemoryLedger | undefined;
    if (durable) this.ledger = durable.ledger;
    else this.ledger = own = new MemoryLedger(limits);
    this.apiKeys = durable?.apiKeys ?? new MemoryApiKeys();
    this.log = this.ids = new MemoryLog(limits, own, durable?.journal);
    this.replies = durable?.replies ?? new MemoryReplies(limits.maxQueuedReplies);
    this.lists = durable?.lists ?? new MemoryLists(this.log);
  }

  async deleteConversation(conversationId: string): Promise<void> {
    this.log.delete(conversationId);
    this.replies.forget(conversationId);
    this.members.forget(conversationId);
    this.lists.forget(conversationId);
  }

  async eraseAuthor(conversationId: string, userId: string): Promise<number> {
    return this.log.eraseAuthor(conversationId, userId);
  }

  async isDeleted(conversationId: string): Promise<boolean> {
    return this.log.isDeleted(conversationId);
  }

  async submit(conversationId: string, entry: EntryInput, reply: ReplyJob | undefined, placement?: Placement): Promise<Submission> {
    const clientId = entryKey(entry);
    const seen = clientId ? this.log.seen(conversationId, clientId) : undefined;
    if (seen) return { kind: 'duplicate', stored: seen };
    const reserved = reply ? this.replies.reserve(conversationId, reply) : { start: false };
    if (!reserved) return { kind: 'queue-full' };
    try {
      // A durable journal writes the reserved job with the message, in one transaction.
      return { kind: 'appended', stored: this.log.appendEntry(conversationId, entry, placement), start: reserved.start };
    } catch (err) {
      // The message could not be kept: neither is its reply.
      if (reply) this.replies.undo(conversationId, reply.replyId);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.log.close();
    await this.durable?.close();
  }
}
