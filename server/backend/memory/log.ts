// The in-memory event log of every conversation on this node: seq, the
// retained events resume reads, the history folded from them, and the
// clientMessageId index. Bounded: the log by the retention rule, history and
// the id index by count, and a conversation no socket needs is evicted whole.
// A durable backend (server/backend/sqlite) keeps the same log on disk
// through a journal: told of every change, asked for what it does not hold.
import { randomUUID } from 'node:crypto';
import type { ConversationEvent, ConversationSettings, ConversationSummary, HistoryMessage } from '../../../shared/protocol.js';
import { authorOf, erased } from '../../history/erase.js';
import { RelayError } from '../../errors.js';
import { activePath, leafOf, onPath, placedId, setParent, toPrune, type Placement } from '../../history/branches.js';
import { applyChange, creatorOf, type TreeState } from '../../history/changes.js';
import { entryKey, entryOf, foldReply, inFlightNode, insertHistory, isReplyEvent, streamingView, worthSending, type HistoryEntry, type InFlight } from '../../history/fold.js';
import { eventsToDrop, overLimits, type Retained } from '../../history/retention.js';
import { toContextMessage, type ContextMessage } from '../../reply/context.js';
import { CLIENT_IDS_KEPT, parseEvent, type EntryInput, type EventLog, type Fence, type Meta, type LedgerEntry, type Replay, type EventInput, type MessageIds, type Snapshot, type StateChange, type StoredEvent, type StoreLimits } from '../store.js';

/** Where the log writes a reply's bill with its end (a durable backend's journal writes its own). */
export interface LedgerSink {
  add(entry: LedgerEntry): void;
}

/** What the log keeps of an event: its JSON (the event object is rebuilt on a replay, which is rare). */
export interface LogEntry extends Retained {
  readonly json: string;
}

/** A conversation as a journal read it back: what the log held of it when it was written. */
export interface LoadedConversation {
  seq: number;
  epoch: string;
  /** Bytes of every event so far. */
  end: number;
  log: LogEntry[];
  history: HistoryEntry[];
  /** The reply that was streaming when it was written, folded from the log. */
  inFlight: InFlight | undefined;
  clientIds: Array<[string, StoredEvent]>;
  state: TreeState;
}

/** One appended event, as a journal is told of it. */
export interface Appended {
  conversationId: string;
  entry: LogEntry;
  epoch: string;
  type: EventInput['type'];
  /** A reply event's reply. */
  replyId: string | undefined;
  /** The history entry it adds (a message, a tool result, a finished reply). */
  history: HistoryEntry | undefined;
  /** Its clientMessageId or tool call key, for idempotent writes. */
  clientId: string | undefined;
  bill: LedgerEntry | undefined;
  /** The leaf and settings after it, when it changed them. */
  state: TreeState | undefined;
  /** History entries (their startSeq) that go to keep history within its bound. */
  pruned: number[] | undefined;
}

/**
 * Where a durable backend keeps the log. `appended` must have made a message
 * or tool result durable when it returns (it throws, and nothing changes, when
 * it cannot); a reply's own events may be batched (a reply.end writes the
 * batch with it).
 */
export interface LogJournal {
  load(conversationId: string): LoadedConversation | undefined;
  appended(change: Appended): void;
  /** Retained events before `firstSeq` are dropped. */
  trimmed(conversationId: string, firstSeq: number): void;
  /** A user's words were erased: these history entries rewritten, these ids and the events before `firstKept` gone. */
  erased(conversationId: string, change: { entries: HistoryEntry[]; clientIds: string[]; firstKept: number }): void;
  /** The conversation is deleted: everything of it goes, and it is remembered as deleted. */
  deleted(conversationId: string): void;
  isDeleted(conversationId: string): boolean;
}

interface Counted extends HistoryEntry {
  /** Counted when a reply first needs it, not when the message lands. */
  context?: ContextMessage;
}

/** How many evicted conversations remember their last seq, so a recreated one never reuses a seq. */
const TOMBSTONES_KEPT = 10_000;

class Conversation {
  readonly log: LogEntry[] = [];
  /** One process: the log is lost only with the process, so each conversation keeps one epoch for its life here. */
  readonly epoch: string;
  /** Bytes of every event appended so far. */
  end = 0;
  readonly history: Counted[] = [];
  inFlight: InFlight | undefined;
  readonly clientIds = new Map<string, StoredEvent>();
  state: TreeState = { leaf: undefined, settings: {}, owner: undefined, roles: {} };
  /** When its last event was written (ms). */
  lastAt = 0;

  constructor(
    public seq: number,
    epoch: string | undefined,
  ) {
    this.epoch = epoch ?? randomUUID();
  }

  static from(loaded: LoadedConversation): Conversation {
    const c = new Conversation(loaded.seq, loaded.epoch);
    c.end = loaded.end;
    c.log.push(...loaded.log);
    c.history.push(...loaded.history);
    c.inFlight = loaded.inFlight;
    c.state = loaded.state;
    c.lastAt = loaded.log.at(-1)?.at ?? 0;
    for (const [key, stored] of loaded.clientIds) c.clientIds.set(key, stored);
    return c;
  }
}

export class MemoryLog implements EventLog, MessageIds {
  private readonly conversations = new Map<string, Conversation>();
  /** A forgotten conversation's seq and epoch: its next life goes on from them, never reusing a seq. */
  private readonly tombstones = new Map<string, { seq: number; epoch: string }>();
  /** Conversations no node object needs any more, and since when: forgotten after conversationIdleMs. */
  private readonly released = new Map<string, number>();
  /** Conversations deleted in this process's life (a durable journal remembers them beyond). */
  private readonly deleted = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: StoreLimits,
    private readonly ledger: LedgerSink | undefined,
    private readonly journal?: LogJournal,
  ) {
    // One timer for every conversation, rather than one each.
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(limits.conversationIdleMs / 2, 60_000)));
    this.sweeper.unref();
  }

  private get(id: string): Conversation {
    this.released.delete(id);
    let c = this.peek(id);
    if (!c) {
      // A deleted conversation is not written again (a reply that was still ending, a late send).
      if (this.isDeleted(id)) throw new RelayError('not_found', 'this conversation was deleted');
      const tomb = this.tombstones.get(id);
      c = new Conversation(tomb?.seq ?? 0, tomb?.epoch);
      this.tombstones.delete(id);
      this.conversations.set(id, c);
    }
    return c;
  }

  /** Reads create nothing (a socket that only joins and leaves leaves no state behind), but a journal's conversation is read back. */
  /**
   * `keep`: a member needs it, so it stays in memory. A look alone (a list, a
   * meta read, an export) leaves a released one released, and one read back
   * from the journal for it is forgotten again in its time.
   */
  private peek(id: string, keep = true): Conversation | undefined {
    let c = this.conversations.get(id);
    let readBack = false;
    if (!c && this.journal) {
      const loaded = this.journal.load(id);
      if (loaded) this.conversations.set(id, (c = Conversation.from(loaded)));
      readBack = c !== undefined;
    }
    if (c && keep) this.released.delete(id);
    else if (readBack) this.released.set(id, Date.now());
    return c;
  }

  /** What a user's list shows of a conversation this process holds. */
  summary(conversationId: string): Omit<ConversationSummary, 'unread'> | undefined {
    const c = this.peek(conversationId, false);
    if (!c || c.seq === 0) return undefined;
    const { title } = c.state.settings;
    return { conversationId, seq: c.seq, lastActivity: c.lastAt, ...(title ? { title } : {}), ...(c.state.owner ? { owner: c.state.owner } : {}) };
  }

  async entries(conversationId: string): Promise<HistoryMessage[]> {
    return this.peek(conversationId, false)?.history.map((h) => h.message) ?? [];
  }

  /** A user's words erased (history/erase.ts): the entries rewritten, their ids and the retained events gone. */
  eraseAuthor(conversationId: string, userId: string): number {
    const c = this.peek(conversationId, false);
    if (!c) return 0;
    const changed = erased(c.history, userId);
    const ids = [...c.clientIds].filter(([, { event }]) => authorOf(event) === userId).map(([id]) => id);
    // The events of a reply streaming now stay: it is left to end, and its joiners need them.
    const firstKept = c.inFlight?.startSeq ?? c.seq + 1;
    this.journal?.erased(conversationId, { entries: changed, clientIds: ids, firstKept });
    for (const entry of changed) c.history.splice(c.history.findIndex((h) => h.startSeq === entry.startSeq), 1, entry);
    for (const id of ids) c.clientIds.delete(id);
    const kept = c.log.findIndex((e) => e.seq >= firstKept);
    c.log.splice(0, kept < 0 ? c.log.length : kept);
    return changed.length;
  }

  /** Gone for good: nothing of it stays, and it is not written again. */
  delete(conversationId: string): void {
    this.journal?.deleted(conversationId);
    this.conversations.delete(conversationId);
    this.tombstones.delete(conversationId);
    this.released.delete(conversationId);
    this.deleted.add(conversationId);
    if (this.deleted.size > TOMBSTONES_KEPT) this.deleted.delete(this.deleted.values().next().value!);
  }

  isDeleted(conversationId: string): boolean {
    return this.deleted.has(conversationId) || (this.journal?.isDeleted(conversationId) ?? false);
  }

  /** The reply streaming in a conversation, as far as its log shows. */
  inFlightOf(conversationId: string): InFlight | undefined {
    return this.peek(conversationId)?.inFlight;
  }

  private sweep(now = Date.now()): void {
    for (const [id, since] of this.released) {
      if (now - since < this.limits.conversationIdleMs) continue;
      this.released.delete(id);
      this.forget(id);
    }
  }

  /** One process: no other node can hold the lease, so there is nothing to fence. */
  append(conversationId: string, input: EventInput, fence?: Fence, bill?: LedgerEntry): StoredEvent {
    return this.write(this.get(conversationId), conversationId, input, { bill, placement: fence?.job?.placeAt });
  }

  /** A message or tool result, at the end of the active path or (an edit) where `placement` says. */
  appendEntry(conversationId: string, entry: EntryInput, placement: Placement | undefined): StoredEvent {
    return this.write(this.get(conversationId), conversationId, entry, { placement });
  }

  async meta(conversationId: string): Promise<Meta> {
    const state = this.peek(conversationId, false)?.state;
    return { settings: state?.settings ?? {}, owner: state?.owner, roles: state?.roles ?? {} };
  }

  async change(conversationId: string, change: StateChange): Promise<StoredEvent> {
    const c = this.get(conversationId);
    const { input, state } = applyChange(conversationId, c.history, c.state, change);
    return this.write(c, conversationId, input, { state });
  }

  private write(c: Conversation, conversationId: string, input: EventInput, opts: { bill?: LedgerEntry | undefined; placement?: Placement | undefined; state?: TreeState }): StoredEvent {
    const seq = c.seq + 1;
    const placed = placedId(input);
    let state = opts.state;
    if (placed) {
      setParent(input, opts.placement, leafOf(c.history, c.state.leaf));
      state = { ...c.state, leaf: placed };
    }
    // Only the event that starts a conversation makes its owner: one written before owners keeps none.
    const creator = c.state.owner === undefined && c.history.length === 0 ? creatorOf(input) : undefined;
    if (creator) state = { ...(state ?? c.state), owner: creator };
    // The log owns what it is given (every caller builds a fresh object): adding seq in place
    // saves a copy per token.
    const event: ConversationEvent = Object.assign(input, { seq });
    const json = JSON.stringify(event);
    const at = Date.now();
    const entry = { seq, json, at, offset: c.end };
    const stored = { event, json, epoch: c.epoch };
    const isEntry = event.type === 'message' || event.type === 'tool.result';
    // A reply.end's fold changes nothing in place; a delta's does, so it waits until the journal has taken it.
    const ending = event.type === 'reply.end' ? foldReply(c.inFlight, event, at) : undefined;
    const history = isEntry ? entryOf(event) : ending?.completed;
    const clientId = isEntry ? entryKey(event) : undefined;
    const pruned = history ? this.toPrune(c, history, state?.leaf ?? c.state.leaf) : undefined;
    // The journal first: what it refuses to keep is not appended here either.
    // One plain object: for a delta this runs once per token.
    const replyId = isReplyEvent(event) ? event.replyId : undefined;
    this.journal?.appended({ conversationId, entry, epoch: c.epoch, type: event.type, replyId, history, clientId, bill: opts.bill, state, pruned: pruned?.map((p) => p.startSeq) });
    c.seq = seq;
    c.lastAt = at;
    c.log.push(entry);
    c.end += Buffer.byteLength(json);
    if (state) c.state = state;
    if (isReplyEvent(event)) c.inFlight = (ending ?? foldReply(c.inFlight, event, at)).inFlight;
    if (history) insertHistory(c.history, history);
    for (const gone of pruned ?? []) c.history.splice(c.history.indexOf(gone), 1);
    if (clientId) this.remember(c, clientId, stored);
    if (opts.bill) this.ledger?.add(opts.bill);
    // After the fold: a reply that just ended no longer holds its events in the log.
    this.trim(conversationId, c, at);
    return stored;
  }

  /** What goes from history once `entry` is in, to keep it within its bound (the entry itself never). */
  private toPrune(c: Conversation, entry: HistoryEntry, leaf: string | undefined): HistoryEntry[] | undefined {
    if (c.history.length < this.limits.historyLimit) return undefined;
    const next = [...c.history];
    insertHistory(next, entry);
    return toPrune(next, leaf, this.limits.historyLimit, inFlightNode(c.inFlight)).filter((e) => e !== entry);
  }

  private remember(c: Conversation, clientId: string, stored: StoredEvent): void {
    c.clientIds.set(clientId, stored);
    if (c.clientIds.size > CLIENT_IDS_KEPT) c.clientIds.delete(c.clientIds.keys().next().value!);
  }

  private trim(conversationId: string, c: Conversation, now: number): void {
    const extent = { count: c.log.length, end: c.end, keepFrom: c.inFlight?.startSeq };
    if (!overLimits(c.log[0], extent, this.limits, now)) return;
    c.log.splice(0, eventsToDrop(c.log, extent, this.limits, now));
    const first = c.log[0]?.seq ?? c.seq + 1;
    this.journal?.trimmed(conversationId, first);
  }

  async find(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined> {
    return this.seen(conversationId, clientMessageId);
  }

  /** Synchronous, so that submit checks and appends in one step. */
  seen(conversationId: string, clientMessageId: string): StoredEvent | undefined {
    return this.peek(conversationId)?.clientIds.get(clientMessageId);
  }

  /** Is the conversation held in this process right now (not only in a journal)? */
  holds(conversationId: string): boolean {
    return this.conversations.has(conversationId);
  }

  async snapshot(conversationId: string): Promise<Snapshot> {
    const c = this.peek(conversationId);
    if (!c) {
      const tomb = this.tombstones.get(conversationId);
      return tomb ? { seq: tomb.seq, epoch: tomb.epoch, history: [] } : { seq: 0, history: [] };
    }
    const snap: Snapshot = { seq: c.seq, epoch: c.epoch, history: activePath(c.history, c.state.leaf, inFlightNode(c.inFlight)) };
    if (c.inFlight) snap.streaming = streamingView(c.inFlight);
    if (Object.keys(c.state.settings).length) snap.settings = c.state.settings;
    if (c.state.owner) snap.owner = c.state.owner;
    return snap;
  }

  async eventsSince(conversationId: string, since: number, epoch?: string): Promise<Replay | undefined> {
    const c = this.peek(conversationId);
    const known = c ?? this.tombstones.get(conversationId);
    const seq = known?.seq ?? 0;
    if (epoch !== undefined && epoch !== known?.epoch) return undefined;
    if (since > seq) return undefined; // a seq from another life of this conversation
    if (since === seq) return { events: [], epoch: known?.epoch };
    const first = c?.log[0]?.seq;
    if (!c || first === undefined || since + 1 < first) return undefined;
    // Seqs in the log are consecutive, so the position is arithmetic.
    return { events: c.log.slice(since + 1 - first).map(({ json }) => ({ json, event: parseEvent(json) })), epoch: c.epoch };
  }

  async context(conversationId: string): Promise<{ messages: ContextMessage[]; settings: ConversationSettings }> {
    const c = this.peek(conversationId);
    if (!c) return { messages: [], settings: {} };
    const path = onPath(c.history, c.state.leaf, inFlightNode(c.inFlight));
    return { messages: path.filter((h) => worthSending(h.message)).map((h) => (h.context ??= toContextMessage(h.message))), settings: c.state.settings };
  }

  /** Kept for conversationIdleMs more (a member may come back to its history), then forgotten. */
  async evict(conversationId: string): Promise<void> {
    if (this.conversations.has(conversationId)) this.released.set(conversationId, Date.now());
  }

  private forget(conversationId: string): void {
    const c = this.conversations.get(conversationId);
    if (!c) return;
    this.conversations.delete(conversationId);
    this.tombstones.set(conversationId, { seq: c.seq, epoch: c.epoch });
    if (this.tombstones.size > TOMBSTONES_KEPT) this.tombstones.delete(this.tombstones.keys().next().value!);
  }

  size(): number {
    return this.conversations.size;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
