// The Redis Store: state every relay node shares, so all nodes see one
// sequence of events per conversation. Each part is its own module; submit is
// the one step across them, one script.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import type { EntryInput, ReplyJob, Store, Submission } from '../store.js';
import { parseEvent } from '../store.js';
import { RedisApiKeys } from './api-keys.js';
import { RedisLedger } from './ledger.js';
import type { Keys } from './keys.js';
import { RedisLog, deletedError } from './log.js';
import { RedisLists } from './lists.js';
import { RedisMembers } from './members.js';
import type { RedisStoreOptions } from './options.js';
import { RedisReplies } from './replies.js';
import { deleteScript, submitScript } from './scripts.js';
import { PLACE_TRIES } from './tree.js';
import { authorOf, erased } from '../../history/erase.js';
import { placedId, setParent, type Placement } from '../../history/branches.js';
import { RelayError } from '../../errors.js';

const Appended = z.tuple([z.literal('appended'), z.string(), z.number(), z.string(), z.number()]);
const SubmitReply = z.tuple([z.enum(['appended', 'duplicate', 'queue-full', 'moved', 'deleted'])]).rest(z.unknown());

export class RedisStore implements Store {
  readonly log: RedisLog;
  readonly ids: RedisLog;
  readonly replies: RedisReplies;
  readonly members: RedisMembers;
  readonly apiKeys: RedisApiKeys;
  readonly ledger: RedisLedger;
  readonly lists: RedisLists;

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
    this.lists = new RedisLists(redis, keys, opts);
  }

  async deleteConversation(conversationId: string): Promise<void> {
    const k = this.keys.conversation(conversationId);
    const users = await this.redis.smembers(k.listed);
    await deleteScript.run(this.redis, k, { retentionMs: this.opts.retentionMs });
    await this.lists.forget(conversationId, users);
  }

  /**
   * Not one atomic step: each part is idempotent, and an erase run again
   * finishes what a failed one left.
   */
  async eraseAuthor(conversationId: string, userId: string): Promise<number> {
    const k = this.keys.conversation(conversationId);
    const [entries, ids, startSeq, seq] = await Promise.all([this.log.tree.history(conversationId), this.redis.hgetall(k.ids), this.redis.hget(k.st, 'startSeq'), this.redis.get(k.seq)]);
    const changed = erased(entries, userId);
    const byJson = new Map(entries.map((e) => [e.startSeq, e.json]));
    const theirs = Object.entries(ids).filter(([, json]) => authorOf(parseEvent(json)) === userId);
    const erase = this.redis.multi();
    for (const entry of changed) erase.zrem(k.hist, byJson.get(entry.startSeq)!).zadd(k.hist, entry.startSeq, JSON.stringify(entry.message));
    for (const [clientId] of theirs) erase.hdel(k.ids, clientId).zrem(k.idx, clientId);
    // The events of a reply streaming now stay: it is left to end, and its joiners need them.
    erase.xtrim(k.log, 'MINID', `${startSeq ?? Number(seq ?? 0) + 1}-0`);
    await erase.exec();
    this.log.forgetCounts(conversationId);
    return changed.length;
  }

  async isDeleted(conversationId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.conversation(conversationId).tree, 'deleted')) === 1;
  }

  /** The entry takes its place in the tree as it stands; tried again while other nodes move it. */
  async submit(conversationId: string, entry: EntryInput, reply: ReplyJob | undefined, placement?: Placement): Promise<Submission> {
    for (let attempt = 1; ; attempt++) {
      const tree = await this.log.tree.read(conversationId);
      setParent(entry, placement, tree.leaf);
      const args = {
        ...this.log.entryArgs(entry),
        expectRev: tree.rev,
        leaf: placedId(entry) ?? '',
        job: reply ? JSON.stringify(reply) : '',
        jobReplyId: reply?.replyId ?? '',
        maxQueued: this.opts.maxQueuedReplies,
      };
      const result = SubmitReply.parse(await submitScript.run(this.redis, this.keys.append(conversationId), args));
      if (result[0] === 'moved') {
        if (attempt === PLACE_TRIES) throw new RelayError('busy', 'the conversation kept changing; try again');
        continue;
      }
      if (result[0] === 'queue-full') return { kind: 'queue-full' };
      if (result[0] === 'deleted') throw deletedError();
      if (result[0] === 'duplicate') {
        const json = z.string().parse(result[1]);
        return { kind: 'duplicate', stored: { json, event: parseEvent(json) } };
      }
      const [, json, start, epoch, size] = Appended.parse(result);
      await this.log.trimQuietly(conversationId);
      await this.log.tree.prune(conversationId, size);
      return { kind: 'appended', stored: { json, event: this.log.withSeq(json, entry), epoch }, start: start === 1 };
    }
  }

  async close(): Promise<void> {}
}
