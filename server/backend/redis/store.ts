// The Redis Store: state every relay node shares, so all nodes see one
// sequence of events per conversation. Each part is its own module; submit is
// the one step across them, one script.
import type { Redis } from 'ioredis';
import type { Logger } from '../../log.js';
import type { EntryInput, ReplyJob, Store, Submission } from '../store.js';
import { parseEvent } from '../store.js';
import { RedisApiKeys } from './api-keys.js';
import { RedisLedger } from './ledger.js';
import type { Keys } from './keys.js';
import { RedisLog } from './log.js';
import { RedisMembers } from './members.js';
import type { RedisStoreOptions } from './options.js';
import { RedisReplies } from './replies.js';
import { submitScript } from './scripts.js';

export class RedisStore implements Store {
  readonly log: RedisLog;
  readonly ids: RedisLog;
  readonly replies: RedisReplies;
  readonly members: RedisMembers;
  readonly apiKeys: RedisApiKeys;
  readonly ledger: RedisLedger;

  constructor(
    private readonly redis: Redis,
    readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
    log: Logger,
  ) {
    this.log = this.ids = new RedisLog(redis, keys, opts, log);
    this.replies = new RedisReplies(redis, keys, opts);
    this.members = new RedisMembers(redis, keys, opts);
    this.apiKeys = new RedisApiKeys(redis, keys);
    this.ledger = new RedisLedger(redis, keys, opts);
  }

  async submit(conversationId: string, entry: EntryInput, reply: ReplyJob | undefined): Promise<Submission> {
    const args = {
      ...this.log.entryArgs(entry),
      job: reply ? JSON.stringify(reply) : '',
      jobReplyId: reply?.replyId ?? '',
      maxQueued: this.opts.maxQueuedReplies,
    };
    const result = await submitScript.run(this.redis, this.keys.append(conversationId), args);
    if (!Array.isArray(result)) throw new Error('unexpected submit result');
    const [kind, json, start, epoch] = result;
    if (kind === 'queue-full') return { kind: 'queue-full' };
    if (typeof json !== 'string') throw new Error('unexpected submit result');
    if (kind === 'duplicate') return { kind: 'duplicate', stored: { json, event: parseEvent(json) } };
    await this.log.trimQuietly(conversationId);
    const stored = { json, event: this.log.withSeq(json, entry), ...(typeof epoch === 'string' ? { epoch } : {}) };
    return { kind: 'appended', stored, start: start === 1 };
  }

  async close(): Promise<void> {}
}
