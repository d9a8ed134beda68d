// The in-memory Store: zero setup, one node. Its parts live in one process,
// so submit's step across them is atomic by being synchronous.
import { entryKey } from '../../history/fold.js';
import type { EntryInput, ReplyJob, Store, StoreLimits, Submission } from '../store.js';
import { MemoryApiKeys } from './api-keys.js';
import { MemoryLedger } from './ledger.js';
import { MemoryLog } from './log.js';
import { MemoryMembers } from './members.js';
import { MemoryReplies } from './replies.js';

export class MemoryStore implements Store {
  readonly log: MemoryLog;
  readonly ids: MemoryLog;
  readonly replies: MemoryReplies;
  readonly members = new MemoryMembers();
  readonly apiKeys = new MemoryApiKeys();
  readonly ledger: MemoryLedger;

  constructor(limits: StoreLimits) {
    this.ledger = new MemoryLedger(limits);
    this.log = this.ids = new MemoryLog(limits, this.ledger);
    this.replies = new MemoryReplies(limits.maxQueuedReplies);
  }

  async submit(conversationId: string, entry: EntryInput, reply: ReplyJob | undefined): Promise<Submission> {
    const clientId = entryKey(entry);
    const seen = clientId ? this.log.seen(conversationId, clientId) : undefined;
    if (seen) return { kind: 'duplicate', stored: seen };
    const reserved = reply ? this.replies.reserve(conversationId, reply) : { start: false };
    if (!reserved) return { kind: 'queue-full' };
    return { kind: 'appended', stored: this.log.append(conversationId, entry), start: reserved.start };
  }

  async close(): Promise<void> {
    this.log.close();
  }
}
