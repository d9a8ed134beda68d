// A conversation's tree in Redis: the state hash beside history (leaf,
// settings, and a revision every placed event is checked against), history
// read with the seq each entry is scored by, a history written before
// branches linked once, and history pruned to its bound. Which entries go,
// and what the active path is, is decided in server/history/branches.ts.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ConversationSettings, HistoryMessage } from '../../../shared/protocol.js';
import { linkLegacy, leafOf, toPrune } from '../../history/branches.js';
import type { TreeState } from '../../history/changes.js';
import type { HistoryEntry } from '../../history/fold.js';
import type { Keys } from './keys.js';

/** A history entry with the member it is stored as (to remove it by). */
export interface StoredEntry extends HistoryEntry {
  json: string;
}

export interface Tree extends TreeState {
  /** The revision a placement was computed against; the script refuses the write if it moved. */
  rev: string;
}

/** Tries to place an event while other nodes keep moving the tree, before giving up. */
export const PLACE_TRIES = 8;

/** ZRANGE … WITHSCORES: member, score, member, score … */
export function parseHistory(flat: readonly string[]): StoredEntry[] {
  const entries: StoredEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const json = flat[i]!;
    entries.push({ json, startSeq: Number(flat[i + 1]), message: HistoryMessage.parse(JSON.parse(json)) });
  }
  return entries;
}

const Roles = z.record(z.string(), z.enum(['owner', 'member', 'viewer', 'removed']));

export function parseTree(leaf: string | null | undefined, settings: string | null | undefined, rev: string | null | undefined, owner?: string | null, roles?: string | null): Tree {
  return {
    leaf: leaf || undefined,
    settings: settings ? ConversationSettings.parse(JSON.parse(settings)) : {},
    rev: rev ?? '0',
    owner: owner || undefined,
    roles: roles ? Roles.parse(JSON.parse(roles)) : {},
  };
}

export class RedisTree {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly historyLimit: number,
  ) {}

  /** The tree as it stands, for an event placed now (a history from before branches is linked first). */
  async read(conversationId: string): Promise<Tree> {
    const k = this.keys.conversation(conversationId);
    const [leaf, settings, rev, owner, roles] = await this.redis.hmget(k.tree, 'leaf', 'settings', 'rev', 'owner', 'roles');
    if (rev === null && (await this.linkLegacy(conversationId))) return this.read(conversationId);
    return parseTree(leaf, settings, rev, owner, roles);
  }

  async history(conversationId: string): Promise<StoredEntry[]> {
    return parseHistory(await this.redis.zrange(this.keys.conversation(conversationId).hist, 0, -1, 'WITHSCORES'));
  }

  /**
   * Entries written before messages had parents get them, once: each follows
   * the one before it. Whichever node does it first, the result is the same.
   */
  private async linkLegacy(conversationId: string): Promise<boolean> {
    const entries = await this.history(conversationId);
    if (entries.length === 0) return false;
    const k = this.keys.conversation(conversationId);
    const multi = this.redis.multi();
    linkLegacy(entries).forEach((linked, i) => {
      const was = entries[i]!;
      if (linked === was) return;
      multi.zrem(k.hist, was.json).zadd(k.hist, linked.startSeq, JSON.stringify(linked.message));
    });
    multi.hsetnx(k.tree, 'leaf', leafOf(entries, undefined)!).hincrby(k.tree, 'rev', 1);
    await multi.exec();
    return true;
  }

  /** History over its bound (`size` entries after an append): the entries branches.toPrune picks go. */
  async prune(conversationId: string, size: number): Promise<void> {
    if (size <= this.historyLimit) return;
    const k = this.keys.conversation(conversationId);
    const [entries, leaf, [replyId, parent]] = await Promise.all([this.history(conversationId), this.redis.hget(k.tree, 'leaf'), this.redis.hmget(k.st, 'replyId', 'parent')]);
    // A reply streaming now is on the path (messages sent meanwhile hang from it).
    const inFlight = replyId ? { id: replyId, parentId: parent || undefined } : undefined;
    const gone = toPrune(entries, leaf ?? undefined, this.historyLimit, inFlight);
    if (gone.length) await this.redis.zrem(k.hist, ...gone.map((e) => e.json));
  }
}
