// Where everything lives in Redis, and which storage layout it is in. Keys of
// one conversation share a hash tag ({c:ID}). The usage ledger is written in
// the same script as the reply end it bills, so the store needs one Redis
// primary (with replicas or Sentinel), not a Redis Cluster.
import type { Redis } from 'ioredis';

/**
 * The layout this code reads and writes. 1: history folded by Lua into
 * st:text/st:reasoning/st:refusal (no version key). 2: history folded in
 * TypeScript; the log carries each event's time and byte offset.
 */
export const LAYOUT_VERSION = 2;

/** The keys of one conversation. */
export const CONVERSATION_KEYS = [
  'seq', // INCR counter: the conversation's last seq
  'epoch', // random id of this life of the log: written with its first event, gone when the log is lost
  'log', // stream: entry id "<seq>-0"; e = event JSON, t = appended at (ms), o = byte offset
  'bytes', // INCRBY counter: bytes of every event appended (the offset after the newest)
  'hist', // sorted set: complete history messages (JSON) scored by the seq that opened them
  'st', // hash: the reply in flight (replyId, startSeq, ord = last ordinal written, parent = the message before it; before its start, handed = the job a node was handed)
  'tree', // hash: leaf = the active path's end, settings = the conversation's own (JSON), rev = bumped with each change, owner = its creator's user id, roles = the roles its owner gave (JSON), at = its last activity (ms); after a delete only deleted = 1
  'ids', // hash: clientMessageId -> the message event JSON, for idempotent send
  'idx', // sorted set: the same ids by seq, to trim the hash
  'lease', // "<node>|<replyId>" with an expiry: who runs the conversation's reply
  'queue', // list of queued reply jobs (JSON)
  'members', // hash: memberId -> {"n": node, "u": user}
  'listed', // set: the users whose conversation lists hold it
] as const;
export type ConversationKey = (typeof CONVERSATION_KEYS)[number];

export class Keys {
  constructor(readonly prefix: string) {}

  conversation(conversationId: string): Record<ConversationKey, string> {
    const base = `${this.prefix}{c:${conversationId}}:`;
    return Object.fromEntries(CONVERSATION_KEYS.map((k) => [k, base + k])) as Record<ConversationKey, string>;
  }

  channel(conversationId: string): string {
    return `${this.prefix}{c:${conversationId}}:ch`;
  }

  node(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }

  user(userId: string, what: string): string {
    return `${this.prefix}u:{${userId}}:${what}`;
  }

  /** API keys: records by id, ids by secret hash, usage per key. */
  get apiKeys(): string {
    return `${this.prefix}apikeys`;
  }

  get apiKeyHashes(): string {
    return `${this.prefix}apikeys:byhash`;
  }

  apiKeyUsage(id: string): string {
    return `${this.prefix}apikeys:usage:${id}`;
  }

  /** The usage ledger: every entry, and each user's, sorted by time. */
  get ledger(): string {
    return `${this.prefix}ledger`;
  }

  ledgerOf(userId: string): string {
    return `${this.prefix}ledger:u:${userId}`;
  }

  /** What an append touches: the conversation's keys, and the ledger's when it writes a bill (the user's own, else the ledger's again). */
  append(conversationId: string, billedUser?: string): Record<ConversationKey | 'ledger' | 'ledgerUser', string> {
    return { ...this.conversation(conversationId), ledger: this.ledger, ledgerUser: billedUser === undefined ? this.ledger : this.ledgerOf(billedUser) };
  }

  /** Uploaded files: one hash each (record, bytes, the conversations that reference it), with their owner's and the store's totals. */
  attachments(id: string, userId: string): Record<'item' | 'user' | 'expiry' | 'sizes' | 'total', string> {
    const base = `${this.prefix}att:`;
    return { item: this.attachment(id), user: `${base}u:${userId}`, expiry: `${base}expiry`, sizes: `${base}sizes`, total: `${base}total` };
  }

  attachment(id: string): string {
    return `${this.prefix}att:f:${id}`;
  }

  get layout(): string {
    return `${this.prefix}layout`;
  }
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/**
 * Claim the prefix for this layout, or refuse to start: a node must not read
 * or write a layout it does not know. Data of layout 1 has no version key; it
 * is recognised by its keys.
 */
export async function checkLayout(redis: Redis, keys: Keys): Promise<void> {
  const claimed = await redis.set(keys.layout, String(LAYOUT_VERSION), 'NX');
  const found = claimed === 'OK' ? String(LAYOUT_VERSION) : await redis.get(keys.layout);
  if (claimed === 'OK' && (await holdsLayoutOne(redis, keys))) {
    await redis.del(keys.layout);
    throw new LayoutError(`Redis at prefix "${keys.prefix}" holds conversations of storage layout 1; this relay uses layout ${LAYOUT_VERSION}. Stop every older node and start on a new REDIS_PREFIX (see README: upgrading a cluster)`);
  }
  if (found !== String(LAYOUT_VERSION)) {
    throw new LayoutError(`Redis at prefix "${keys.prefix}" holds storage layout ${found}; this relay knows only layout ${LAYOUT_VERSION}`);
  }
}

/** A bounded look for layout-1 keys (st:text existed only there, and only while a reply streamed; hist always). */
async function holdsLayoutOne(redis: Redis, keys: Keys): Promise<boolean> {
  let cursor = '0';
  for (let round = 0; round < 20; round++) {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}{c:*}:hist`, 'COUNT', 1000);
    if (found.length) {
      // Layout 2 writes "bytes" beside every conversation's history; layout 1 never did.
      const bytesKey = found[0]!.replace(/:hist$/, ':bytes');
      if (!(await redis.exists(bytesKey))) return true;
    }
    cursor = next;
    if (cursor === '0') return false;
  }
  return false;
}
