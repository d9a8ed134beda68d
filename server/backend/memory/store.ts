// The in-memory ConversationStore: zero setup, one node. Appended events go
// straight to the local bus. Memory stays bounded: the log by count and age,
// the history and the queue by count, and a conversation no node needs is
// evicted whole.
import type { ConversationEvent, HistoryMessage, User } from '../../../shared/protocol.js';
import type { LocalBus } from '../../rooms/bus.js';
import { toContextMessage, type ContextMessage } from '../../reply/context.js';
import {
  parseEvent,
  type ConversationStore,
  type EventInput,
  type MessageInput,
  type Origin,
  type QueuedReply,
  type Snapshot,
  type StoredEvent,
  type StoreLimits,
  type Submission,
} from '../store.js';

/** What the log keeps of an event: its JSON (the event object is rebuilt on a replay, which is rare). */
interface LogEntry {
  readonly seq: number;
  readonly json: string;
  readonly at: number;
}

interface HistoryEntry {
  message: HistoryMessage;
  /** seq of the event that opened it: the message, or the reply.start. Orders the history. */
  startSeq: number;
  /** Counted when a reply first needs it, not when the message lands. */
  context?: ContextMessage;
}

interface Streaming {
  replyId: string;
  model: string;
  startSeq: number;
  seq: number;
  createdAt: number;
  text: string;
  reasoning: string;
  refusal: string;
}

/** How many clientMessageIds a conversation remembers for idempotent send. */
const CLIENT_IDS_KEPT = 1_000;
/** How many evicted conversations remember their last seq, so a recreated one never reuses a seq. */
const TOMBSTONES_KEPT = 10_000;

class MemoryConversation {
  readonly log: LogEntry[] = [];
  logBytes = 0;
  readonly history: HistoryEntry[] = [];
  streaming: Streaming | undefined;
  readonly clientIds = new Map<string, StoredEvent>();
  readonly queue: QueuedReply[] = [];
  /** The reply holding the lease: running, or about to start. */
  running: string | undefined;
  readonly members = new Map<string, User>();

  constructor(public seq: number) {}
}

export class MemoryStore implements ConversationStore {
  private readonly conversations = new Map<string, MemoryConversation>();
  private readonly tombstones = new Map<string, number>();

  constructor(
    private readonly limits: StoreLimits,
    private readonly bus: LocalBus,
  ) {}

  private get(id: string): MemoryConversation {
    let c = this.conversations.get(id);
    if (!c) {
      c = new MemoryConversation(this.tombstones.get(id) ?? 0);
      this.tombstones.delete(id);
      this.conversations.set(id, c);
    }
    return c;
  }

  /**
   * One process: no other node can hold the lease, so there is nothing to
   * fence; and nothing to wait for, so the per-token path takes no promise.
   */
  append(conversationId: string, input: EventInput): void {
    this.appendNow(conversationId, input);
  }

  private appendNow(conversationId: string, input: EventInput, origin?: Origin): StoredEvent {
    const c = this.get(conversationId);
    const seq = ++c.seq;
    // The store owns what it is given (every caller builds a fresh object): adding seq in place
    // saves a copy per token.
    const event: ConversationEvent = Object.assign(input, { seq });
    const json = JSON.stringify(event);
    const at = Date.now();
    c.log.push({ seq, json, at });
    c.logBytes += json.length;
    this.trimLog(c, at);
    this.fold(c, event, at, json);
    this.bus.publish(conversationId, origin ? { json, event, origin } : { json, event });
    return { event, json };
  }

  async submit(conversationId: string, message: MessageInput, reply: QueuedReply | undefined, origin: Origin): Promise<Submission> {
    const c = this.get(conversationId);
    const clientId = message.message.clientMessageId;
    const seen = clientId ? c.clientIds.get(clientId) : undefined;
    if (seen) return { kind: 'duplicate', stored: seen };
    let start = false;
    if (reply) {
      if (c.running === undefined) {
        c.running = reply.replyId;
        start = true;
      } else if (c.queue.length >= this.limits.maxQueuedReplies) {
        return { kind: 'queue-full' };
      } else {
        c.queue.push(reply);
      }
    }
    return { kind: 'appended', stored: this.appendNow(conversationId, message, origin), start };
  }

  async findMessage(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined> {
    return this.conversations.get(conversationId)?.clientIds.get(clientMessageId);
  }

  private trimLog(c: MemoryConversation, now: number): void {
    const { eventLogMax, eventLogMaxAgeMs, eventLogMaxBytes } = this.limits;
    // Trim in batches (a quarter over a cap, an eighth over the age) so the hot path stays O(1) amortized.
    let drop = c.log.length > eventLogMax + (eventLogMax >> 2) ? c.log.length - eventLogMax : 0;
    const cutoff = now - eventLogMaxAgeMs;
    if ((c.log[0]?.at ?? now) < cutoff - (eventLogMaxAgeMs >> 3)) {
      while (drop < c.log.length && c.log[drop]!.at < cutoff) drop++;
    }
    if (c.logBytes > eventLogMaxBytes + (eventLogMaxBytes >> 2)) {
      let bytes = c.logBytes;
      for (let i = 0; i < drop; i++) bytes -= c.log[i]!.json.length;
      while (drop < c.log.length - 1 && bytes > eventLogMaxBytes) bytes -= c.log[drop++]!.json.length;
    }
    if (drop === 0) return;
    for (const removed of c.log.splice(0, drop)) c.logBytes -= removed.json.length;
  }

  private fold(c: MemoryConversation, event: ConversationEvent, at: number, json: string): void {
    switch (event.type) {
      case 'message': {
        this.addHistory(c, { ...event.message }, event.seq);
        const clientId = event.message.clientMessageId;
        if (clientId) {
          c.clientIds.set(clientId, { event, json });
          if (c.clientIds.size > CLIENT_IDS_KEPT) c.clientIds.delete(c.clientIds.keys().next().value!);
        }
        return;
      }
      case 'reply.start':
        c.streaming = { replyId: event.replyId, model: event.model, startSeq: event.seq, seq: event.seq, createdAt: at, text: '', reasoning: '', refusal: '' };
        return;
      case 'reply.delta': {
        const s = c.streaming;
        if (!s || s.replyId !== event.replyId) return;
        if (event.text) s.text += event.text;
        if (event.reasoning) s.reasoning += event.reasoning;
        if (event.refusal) s.refusal += event.refusal;
        s.seq = event.seq;
        return;
      }
      case 'reply.end': {
        const s = c.streaming;
        if (!s || s.replyId !== event.replyId) return;
        c.streaming = undefined;
        const message: HistoryMessage = { id: s.replyId, role: 'assistant', text: s.text, createdAt: s.createdAt, finishReason: event.finishReason, model: s.model };
        if (s.reasoning) message.reasoning = s.reasoning;
        if (s.refusal) message.refusal = s.refusal;
        if (event.toolCalls?.length) message.toolCalls = event.toolCalls;
        this.addHistory(c, message, s.startSeq);
      }
    }
  }

  /** Insert by startSeq: a reply lands after the message it answers, before messages sent while it streamed. */
  private addHistory(c: MemoryConversation, message: HistoryMessage, startSeq: number): void {
    let at = c.history.length;
    while (at > 0 && c.history[at - 1]!.startSeq > startSeq) at--;
    c.history.splice(at, 0, { message, startSeq });
    if (c.history.length > this.limits.historyLimit) c.history.splice(0, c.history.length - this.limits.historyLimit);
  }

  async snapshot(conversationId: string): Promise<Snapshot> {
    const c = this.get(conversationId);
    const snap: Snapshot = { seq: c.seq, history: c.history.map((h) => h.message) };
    if (c.streaming) snap.streaming = { replyId: c.streaming.replyId, text: c.streaming.text, seq: c.streaming.seq, model: c.streaming.model };
    return snap;
  }

  async eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined> {
    const c = this.get(conversationId);
    if (since > c.seq) return undefined; // a seq from another life of this conversation
    if (since === c.seq) return [];
    const first = c.log[0]?.seq;
    if (first === undefined || since + 1 < first) return undefined;
    // Seqs in the log are consecutive, so the position is arithmetic.
    return c.log.slice(since + 1 - first).map(({ json }) => ({ json, event: parseEvent(json) }));
  }

  async context(conversationId: string): Promise<ContextMessage[]> {
    const c = this.get(conversationId);
    // Replies that ended before any text (errors, early cancels) say nothing worth sending upstream.
    return c.history.filter((h) => h.message.role === 'user' || h.message.text).map((h) => (h.context ??= toContextMessage(h.message)));
  }

  async nextReply(conversationId: string): Promise<QueuedReply | undefined> {
    const c = this.conversations.get(conversationId);
    if (!c) return undefined;
    const next = c.queue.shift();
    c.running = next?.replyId;
    return next;
  }

  async removeQueued(conversationId: string, replyId: string): Promise<QueuedReply | undefined> {
    const queue = this.conversations.get(conversationId)?.queue;
    const at = queue?.findIndex((r) => r.replyId === replyId) ?? -1;
    return at >= 0 ? queue!.splice(at, 1)[0] : undefined;
  }

  async endQueued(conversationId: string, job: QueuedReply): Promise<void> {
    this.appendNow(conversationId, { type: 'reply.end', conversationId, replyId: job.replyId, finishReason: 'cancelled' });
  }

  async clearQueue(conversationId: string): Promise<QueuedReply[]> {
    return this.conversations.get(conversationId)?.queue.splice(0) ?? [];
  }

  async replyState(conversationId: string): Promise<{ running: string | undefined; queued: number }> {
    const c = this.conversations.get(conversationId);
    return { running: c?.running, queued: c?.queue.length ?? 0 };
  }

  /** One process: the lease cannot be lost, nobody else can hold it. */
  async renewLease(): Promise<void> {}
  async adopt(): Promise<QueuedReply | undefined> {
    return undefined;
  }

  async addMember(conversationId: string, memberId: string, user: User): Promise<void> {
    this.get(conversationId).members.set(memberId, user);
  }

  async removeMember(conversationId: string, memberId: string): Promise<void> {
    this.conversations.get(conversationId)?.members.delete(memberId);
  }

  async members(conversationId: string): Promise<User[]> {
    const users = new Map<string, User>();
    for (const user of this.conversations.get(conversationId)?.members.values() ?? []) users.set(user.id, user);
    return [...users.values()];
  }

  async evict(conversationId: string): Promise<void> {
    const c = this.conversations.get(conversationId);
    if (!c) return;
    this.conversations.delete(conversationId);
    this.tombstones.set(conversationId, c.seq);
    if (this.tombstones.size > TOMBSTONES_KEPT) this.tombstones.delete(this.tombstones.keys().next().value!);
  }

  size(): number {
    return this.conversations.size;
  }

  async close(): Promise<void> {}
}
