// The Redis event log: seq, the retained stream resume reads, and the history
// folded from it. Every write is one script (scripts.ts); what a write adds to
// history is computed here with the same fold the in-memory log uses. The
// reply in flight is not stored folded: a joiner's view of it is folded from
// its retained events, and the node running it keeps its own fold to write the
// finished message.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ConversationSettings, HistoryMessage } from '../../../shared/protocol.js';
import { RelayError } from '../../errors.js';
import { activePath, onPath, setParent } from '../../history/branches.js';
import { applyChange, creatorOf } from '../../history/changes.js';
import { entryKey, entryOf, foldReply, inFlightNode, replayReply, streamingView, worthSending, type HistoryEntry, type InFlight } from '../../history/fold.js';
import { eventsToDrop, overLimits, type Retained } from '../../history/retention.js';
import { toContextMessage, type ContextMessage } from '../../reply/context.js';
import type { Logger } from '../../log.js';
import { CLIENT_IDS_KEPT, LogLostError, parseEvent, type EventInput, type EventLog, type LedgerEntry, type Meta, type Replay, type Fence, type MessageIds, type EntryInput, type ReplyEventInput, type Snapshot, type StateChange, type StoredEvent } from '../store.js';
import type { RedisStoreOptions } from './options.js';
import type { Keys } from './keys.js';
import { appendScript, snapshotScript, trimScript } from './scripts.js';
import { PLACE_TRIES, RedisTree, parseHistory, parseTree, type StoredEntry, type Tree } from './tree.js';

/** A stream entry as XRANGE returns it: [id, [field, value, ...]]. */
const Entry = z.tuple([z.string(), z.array(z.string())]);
const Entries = z.array(Entry);
const SnapshotReply = z.tuple([z.string(), z.string(), z.array(z.string()), Entries, z.string(), z.string(), z.string(), z.string()]);
/** [event JSON, epoch, entries in history], or why it was refused. */
const AppendReply = z.union([z.tuple([z.string(), z.string(), z.number()]), z.string()]);

interface Decoded extends Retained {
  json: string;
}

function decode(entry: z.infer<typeof Entry>): Decoded {
  const [id, fields] = entry;
  const field = (name: string) => fields[fields.indexOf(name) + 1] ?? '';
  return { seq: Number.parseInt(id, 10), json: field('e'), at: Number(field('t')), offset: Number(field('o')) };
}

/** Appends between two looks at whether the log is over its limits. */
const TRIM_CHECK_EVERY = 64;
/** Oldest entries read per trim round; a log further over its limits trims again on later appends. */
const TRIM_BATCH = 2_000;
/** Token counts remembered across replies (the same history is counted for each). */
const COUNTS_KEPT = 10_000;

export function deletedError(): RelayError {
  return new RelayError('not_found', 'this conversation was deleted');
}

export class RedisLog implements EventLog, MessageIds {
  /** The fold of each reply this node runs, to write its history entry at reply.end. */
  private readonly inFlight = new Map<string, InFlight>();
  /** Appends since the last look at the log's size, per conversation this node writes to. */
  private readonly sinceTrimCheck = new Map<string, number>();
  /** Token counts by conversation, so that one (evicted, deleted) is forgotten at once. */
  private readonly tokenCounts = new Map<string, Map<string, ContextMessage>>();
  private countsKept = 0;
  readonly tree: RedisTree;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
    private readonly log: Logger,
  ) {
    this.tree = new RedisTree(redis, keys, opts.historyLimit);
  }

  /** The inputs every append shares; the caller adds what its kind of event needs. */
  appendArgs(event: EventInput) {
    const { retentionMs, nodeId, leaseMs } = this.opts;
    return {
      kind: 'message',
      phase: '',
      json: JSON.stringify(event).slice(1),
      now: Date.now(),
      retentionMs,
      node: nodeId,
      leaseMs,
      replyId: '',
      ordinal: 0,
      history: '',
      historyScore: '',
      clientId: '',
      idsKept: CLIENT_IDS_KEPT,
      // Only an append that may start the log (a message, or an end written into a lost one) brings one:
      // a fenced reply event never starts a log, and this runs once per token.
      epoch: '',
      bill: '',
      billAt: 0,
      ledgerRetentionMs: this.opts.ledgerRetentionMs,
      ledgerMax: this.opts.ledgerMaxEntries,
      runningJob: '',
      responseId: '',
      sequence: 0,
      expectRev: '',
      leaf: '',
      settings: '',
      roles: '',
      parent: '',
      // Every unfenced event may be the one that creates the conversation.
      owner: creatorOf(event) ?? '',
    };
  }

  /** What the append of a message or a tool result adds to history and the id index. */
  entryArgs(input: EntryInput) {
    // The entry is scored in history by its own seq, which the script allocates.
    const entry = entryOf({ ...input, seq: 0 });
    return { ...this.appendArgs(input), history: JSON.stringify(entry.message), clientId: entryKey(input) ?? '', epoch: randomUUID() };
  }

  /**
   * A reply event. Without a fence it is the end of a reply that never
   * started (dropped from the queue): nothing to check, nothing to fold. A
   * reply's start takes its place in the tree, tried again while other nodes
   * move it.
   */
  async append(conversationId: string, event: ReplyEventInput, fence?: Fence, bill?: LedgerEntry): Promise<StoredEvent | undefined> {
    for (let attempt = 1; ; attempt++) {
      const tree = fence && event.type === 'reply.start' ? await this.tree.read(conversationId) : undefined;
      if (tree) setParent(event, fence?.job?.placeAt, tree.leaf);
      const written = await this.appendOnce(conversationId, event, fence, bill, tree);
      if (written !== 'moved') return written;
      if (attempt === PLACE_TRIES) throw new RelayError('internal', 'the conversation kept changing while the reply started');
    }
  }

  private async appendOnce(conversationId: string, event: ReplyEventInput, fence: Fence | undefined, bill: LedgerEntry | undefined, tree: Tree | undefined): Promise<StoredEvent | undefined | 'moved'> {
    const args = this.appendArgs(event);
    if (bill) Object.assign(args, { bill: JSON.stringify(bill), billAt: bill.at });
    if (tree && event.type === 'reply.start') Object.assign(args, { expectRev: tree.rev, leaf: event.replyId, parent: event.parentId ?? '' });
    let completed: HistoryEntry | undefined;
    if (fence) {
      completed = await this.fold(conversationId, event);
      Object.assign(args, {
        kind: 'reply',
        phase: event.type.slice('reply.'.length),
        replyId: event.replyId,
        ordinal: fence.ordinal,
        runningJob: fence.job ? JSON.stringify(fence.job) : '',
        responseId: fence.cursor?.responseId ?? '',
        sequence: fence.cursor?.sequence ?? 0,
        ...(completed ? { history: JSON.stringify(completed.message), historyScore: completed.startSeq } : {}),
      });
    } else {
      args.kind = 'dropped';
      args.epoch = randomUUID();
    }
    const result = AppendReply.parse(await appendScript.run(this.redis, this.keys.append(conversationId, bill?.userId), args));
    if (result === 'moved') return result;
    if (result === 'duplicate' && fence) return this.writtenBefore(conversationId, event);
    if (typeof result === 'string') {
      this.inFlight.delete(conversationId);
      if (result === 'deleted') throw deletedError();
      if (result === 'lost-log') throw new LogLostError();
      if (result === 'lost-lease') throw new RelayError('internal', 'this node no longer holds the reply (lease lost)');
      throw new RelayError('internal', 'the reply event was written before');
    }
    const [json, epoch, size] = result;
    const withSeq = this.withSeq(json, event);
    if (fence && withSeq.type !== 'reply.end') {
      const inFlight = foldReply(this.inFlight.get(conversationId), withSeq, args.now).inFlight;
      if (inFlight) this.inFlight.set(conversationId, inFlight);
    }
    if (event.type === 'reply.delta') this.checkSize(conversationId);
    // After any other event the log is trimmed before members hear of it, as in memory.
    else await this.trimQuietly(conversationId);
    if (completed) await this.tree.prune(conversationId, size);
    return { json, event: withSeq, epoch };
  }

  async entries(conversationId: string): Promise<HistoryMessage[]> {
    return (await this.tree.history(conversationId)).map((e) => e.message);
  }

  async meta(conversationId: string): Promise<Meta> {
    const [settings, owner, roles] = await this.redis.hmget(this.keys.conversation(conversationId).tree, 'settings', 'owner', 'roles');
    const { settings: parsed, owner: by, roles: given } = parseTree(undefined, settings, undefined, owner, roles);
    return { settings: parsed, owner: by, roles: given };
  }

  /** A switch or a configure: computed from the tree as it stands, written unless another node moved it meanwhile. */
  async change(conversationId: string, change: StateChange): Promise<StoredEvent> {
    for (let attempt = 1; ; attempt++) {
      const tree = await this.tree.read(conversationId);
      const { input, state } = applyChange(conversationId, await this.tree.history(conversationId), tree, change);
      const args = { ...this.appendArgs(input), kind: 'state', epoch: randomUUID(), expectRev: tree.rev };
      if (input.type === 'switch') args.leaf = state.leaf ?? '';
      else if (input.type === 'role') args.roles = JSON.stringify(state.roles);
      else args.settings = JSON.stringify(state.settings);
      const result = AppendReply.parse(await appendScript.run(this.redis, this.keys.append(conversationId), args));
      if (typeof result !== 'string') {
        await this.trimQuietly(conversationId);
        return { json: result[0], event: this.withSeq(result[0], input), epoch: result[1] };
      }
      if (result === 'deleted') throw deletedError();
      if (result === 'busy') throw new RelayError('busy', 'a reply is running or waiting in this conversation: cancel it or wait for its end');
      if (result !== 'moved' || attempt === PLACE_TRIES) throw new RelayError('busy', 'the conversation kept changing; try again');
    }
  }

  /**
   * The fence saw this very write before: it went through, but its answer was
   * lost with the connection, and the client sent it again after reconnecting.
   * Members get it from the log (every node catches up after a reconnect); this
   * node's fold of the reply is read back from the log, which has it.
   */
  private async writtenBefore(conversationId: string, event: ReplyEventInput): Promise<undefined> {
    this.log.info({ conversationId, type: event.type }, 'a resent reply event was written before; not written again');
    if (event.type === 'reply.end') return undefined;
    const inFlight = await this.readInFlight(conversationId);
    if (inFlight) this.inFlight.set(conversationId, inFlight);
    return undefined;
  }

  /** The history entry a reply.end completes; other reply events complete none. */
  private async fold(conversationId: string, event: ReplyEventInput): Promise<HistoryEntry | undefined> {
    if (event.type !== 'reply.end') return undefined;
    // This node's own fold, or (a reply adopted from a lost node) one read back from the log.
    const inFlight = this.inFlight.get(conversationId) ?? (await this.readInFlight(conversationId));
    this.inFlight.delete(conversationId);
    // The end's own seq plays no part in the entry it completes.
    return foldReply(inFlight, { ...event, seq: 0 }, Date.now()).completed;
  }

  /** The event with the seq the script gave it, without parsing back what this node just wrote. */
  withSeq<E extends EventInput>(json: string, input: E): E & { seq: number } {
    return Object.assign(input, { seq: Number.parseInt(json.slice('{"seq":'.length), 10) });
  }

  async find(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined> {
    const json = await this.redis.hget(this.keys.conversation(conversationId).ids, clientMessageId);
    return json === null ? undefined : { json, event: parseEvent(json) };
  }

  private async read(conversationId: string): Promise<{ seq: number; epoch: string; history: StoredEntry[]; tree: Tree; inFlight: InFlight | undefined }> {
    const k = this.keys.conversation(conversationId);
    const reply = await snapshotScript.run(this.redis, { seq: k.seq, epoch: k.epoch, hist: k.hist, st: k.st, log: k.log, tree: k.tree }, {});
    const [seq, epoch, history, entries, leaf, settings, rev, owner] = SnapshotReply.parse(reply);
    const events = entries.map(decode).map((d) => ({ event: parseEvent(d.json), at: d.at }));
    return { seq: Number(seq), epoch, history: parseHistory(history), tree: parseTree(leaf, settings, rev, owner), inFlight: replayReply(events) };
  }

  private async readInFlight(conversationId: string): Promise<InFlight | undefined> {
    return (await this.read(conversationId)).inFlight;
  }

  async snapshot(conversationId: string): Promise<Snapshot> {
    const { seq, epoch, history, tree, inFlight } = await this.read(conversationId);
    const snap: Snapshot = { seq, history: activePath(history, tree.leaf, inFlightNode(inFlight)) };
    if (epoch) snap.epoch = epoch;
    if (inFlight) snap.streaming = streamingView(inFlight);
    if (Object.keys(tree.settings).length) snap.settings = tree.settings;
    if (tree.owner) snap.owner = tree.owner;
    return snap;
  }

  async eventsSince(conversationId: string, since: number, epoch?: string): Promise<Replay | undefined> {
    const k = this.keys.conversation(conversationId);
    const [head, current] = await this.redis.mget(k.seq, k.epoch);
    const seq = Number(head ?? 0);
    const life = current ?? undefined;
    if (epoch !== undefined && epoch !== life) return undefined;
    if (since > seq) return undefined; // a seq from another life of this conversation
    if (since === seq) return { events: [], epoch: life };
    const entries = Entries.parse(await this.redis.xrange(k.log, `${since + 1}-0`, '+')).map(decode);
    if (entries[0]?.seq !== since + 1) return undefined;
    return { events: entries.map(({ json }) => ({ json, event: parseEvent(json) })), epoch: life };
  }

  async context(conversationId: string): Promise<{ messages: ContextMessage[]; settings: ConversationSettings }> {
    const k = this.keys.conversation(conversationId);
    const [history, [leaf, settings, rev]] = await Promise.all([this.tree.history(conversationId), this.redis.hmget(k.tree, 'leaf', 'settings', 'rev')]);
    const tree = parseTree(leaf, settings, rev);
    const out: ContextMessage[] = [];
    for (const { message } of onPath(history, tree.leaf)) {
      if (!worthSending(message)) continue;
      out.push(this.counted(conversationId, message));
    }
    return { messages: out, settings: tree.settings };
  }

  private counted(conversationId: string, message: HistoryMessage): ContextMessage {
    let counts = this.tokenCounts.get(conversationId);
    if (!counts) this.tokenCounts.set(conversationId, (counts = new Map()));
    // An erased message keeps its id: the key tells it from what it was, so another node's count of the old text is never used.
    const key = message.redacted ? `${message.id}:redacted` : message.id;
    let counted = counts.get(key);
    if (!counted) {
      counts.set(key, (counted = toContextMessage(message)));
      // Past the bound, the conversation first counted longest ago is forgotten whole.
      if (++this.countsKept > COUNTS_KEPT) this.forgetCounts(this.tokenCounts.keys().next().value!);
    }
    return counted;
  }

  /** What this node counted of a conversation goes (its messages were erased). */
  forgetCounts(conversationId: string): void {
    this.countsKept -= this.tokenCounts.get(conversationId)?.size ?? 0;
    this.tokenCounts.delete(conversationId);
  }

  /** Deltas are the hot path: the log's size is looked at every so many. */
  private checkSize(conversationId: string): void {
    const n = (this.sinceTrimCheck.get(conversationId) ?? 0) + 1;
    this.sinceTrimCheck.set(conversationId, n < TRIM_CHECK_EVERY ? n : 0);
    if (n >= TRIM_CHECK_EVERY) void this.trimQuietly(conversationId);
  }

  /** A failed trim leaves the log longer for a while; the next one catches up. */
  trimQuietly(conversationId: string): Promise<void> {
    return this.trim(conversationId).catch((err: unknown) => this.log.warn({ err, conversationId }, 'trimming the event log failed'));
  }

  /** The retention rule (server/history/retention.ts), applied to the stream. */
  private async trim(conversationId: string): Promise<void> {
    const k = this.keys.conversation(conversationId);
    const results = await this.redis.multi().xlen(k.log).get(k.bytes).xrange(k.log, '-', '+', 'COUNT', 1).hget(k.st, 'startSeq').exec();
    const [count, end, first, keepFrom] = (results ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const now = Date.now();
    const extent = { count: Number(count), end: Number(end ?? 0), keepFrom: keepFrom ? Number(keepFrom) : undefined };
    const oldest = Entries.parse(first).map(decode);
    if (!overLimits(oldest[0], extent, this.opts, now)) return;
    const batch = Entries.parse(await this.redis.xrange(k.log, '-', '+', 'COUNT', TRIM_BATCH)).map(decode);
    const drop = eventsToDrop(batch, extent, this.opts, now);
    const firstKept = batch[drop];
    if (drop > 0 && firstKept) await trimScript.run(this.redis, { log: k.log, st: k.st }, { minSeq: firstKept.seq });
  }

  async evict(conversationId: string): Promise<void> {
    this.sinceTrimCheck.delete(conversationId);
    this.inFlight.delete(conversationId);
    this.forgetCounts(conversationId);
  }

  /** Conversations this node holds anything of in memory. */
  size(): number {
    return new Set([...this.sinceTrimCheck.keys(), ...this.inFlight.keys()]).size;
  }
}
