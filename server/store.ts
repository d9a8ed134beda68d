// Conversation state that outlives a socket: the seq counter, the retained
// event log that resume reads, the history of complete messages, the reply
// queue and the clientMessageId index. Behind an async interface so a shared
// store (Redis) can replace the in-memory one without touching its callers.
import type {
  ConversationEvent,
  HistoryMessage,
  SendOptions,
  User,
} from '../shared/protocol.js';
import { toContextMessage, type ContextMessage } from './context.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before the store gives it its seq. */
export type EventInput = DistributiveOmit<ConversationEvent, 'seq'>;

export interface StoredEvent {
  readonly event: ConversationEvent;
  /** The event serialized once, shared by every member's socket and by replays. */
  readonly json: string;
  readonly at: number;
}

export interface Snapshot {
  seq: number;
  history: HistoryMessage[];
  streaming?: { replyId: string; text: string; seq: number };
}

export interface QueuedReply {
  replyId: string;
  inReplyTo: string;
  user: User;
  options: SendOptions | undefined;
}

export interface StoreLimits {
  historyLimit: number;
  eventLogMax: number;
  eventLogMaxAgeMs: number;
  maxQueuedReplies: number;
}

export interface ConversationStore {
  /** Give the event the next seq of its conversation, retain it, fold it into the history. */
  append(conversationId: string, event: EventInput): Promise<StoredEvent>;
  snapshot(conversationId: string): Promise<Snapshot>;
  /** Every retained event with seq > since, in order; undefined when `since` is not covered (reset). */
  eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined>;
  /** The `message` event a clientMessageId produced, if this conversation has seen it. */
  findMessage(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined>;
  /** History as upstream messages with token counts, oldest first. */
  context(conversationId: string): Promise<ContextMessage[]>;
  /** False when the queue is full. */
  enqueueReply(conversationId: string, reply: QueuedReply): Promise<boolean>;
  nextReply(conversationId: string): Promise<QueuedReply | undefined>;
  removeReply(conversationId: string, replyId: string): Promise<QueuedReply | undefined>;
  clearReplies(conversationId: string): Promise<QueuedReply[]>;
  /** The member set: one entry per subscribed socket, listed once per user. */
  addMember(conversationId: string, memberId: string, user: User): Promise<void>;
  removeMember(conversationId: string, memberId: string): Promise<void>;
  members(conversationId: string): Promise<User[]>;
  /** Forget a conversation's state (it has been idle with no member). */
  evict(conversationId: string): Promise<void>;
  /** Conversations held right now. */
  size(): number;
}

interface HistoryEntry {
  message: HistoryMessage;
  /** seq of the event that opened it: the message, or the reply.start. Orders the history. */
  startSeq: number;
  context: ContextMessage;
}

interface Streaming {
  replyId: string;
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
  seq: number;
  readonly log: StoredEvent[] = [];
  readonly history: HistoryEntry[] = [];
  streaming: Streaming | undefined;
  readonly clientIds = new Map<string, StoredEvent>();
  readonly queue: QueuedReply[] = [];
  readonly members = new Map<string, User>();

  constructor(startSeq: number) {
    this.seq = startSeq;
  }
}

export class MemoryStore implements ConversationStore {
  private readonly conversations = new Map<string, MemoryConversation>();
  private readonly tombstones = new Map<string, number>();

  constructor(private readonly limits: StoreLimits) {}

  private get(id: string): MemoryConversation {
    let c = this.conversations.get(id);
    if (!c) {
      c = new MemoryConversation(this.tombstones.get(id) ?? 0);
      this.tombstones.delete(id);
      this.conversations.set(id, c);
    }
    return c;
  }

  async append(conversationId: string, input: EventInput): Promise<StoredEvent> {
    const c = this.get(conversationId);
    const seq = ++c.seq;
    const event = { ...input, seq } as ConversationEvent; // seq is the one field EventInput lacks
    const stored: StoredEvent = { event, json: JSON.stringify(event), at: Date.now() };
    c.log.push(stored);
    this.trimLog(c, stored.at);
    this.fold(c, stored);
    return stored;
  }

  private trimLog(c: MemoryConversation, now: number): void {
    const { eventLogMax, eventLogMaxAgeMs } = this.limits;
    // Trim in batches (a quarter over the cap, an eighth over the age) so the hot path stays O(1) amortized.
    if (c.log.length > eventLogMax + (eventLogMax >> 2)) c.log.splice(0, c.log.length - eventLogMax);
    const cutoff = now - eventLogMaxAgeMs;
    if ((c.log[0]?.at ?? now) < cutoff - (eventLogMaxAgeMs >> 3)) {
      let keepFrom = 0;
      while (keepFrom < c.log.length && c.log[keepFrom]!.at < cutoff) keepFrom++;
      c.log.splice(0, keepFrom);
    }
  }

  private fold(c: MemoryConversation, { event, at }: StoredEvent): void {
    switch (event.type) {
      case 'message': {
        this.addHistory(c, { ...event.message }, event.seq);
        if (event.message.clientMessageId) {
          c.clientIds.set(event.message.clientMessageId, c.log[c.log.length - 1]!);
          if (c.clientIds.size > CLIENT_IDS_KEPT) c.clientIds.delete(c.clientIds.keys().next().value!);
        }
        return;
      }
      case 'reply.start':
        c.streaming = { replyId: event.replyId, startSeq: event.seq, seq: event.seq, createdAt: at, text: '', reasoning: '', refusal: '' };
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
        const message: HistoryMessage = {
          id: s.replyId,
          role: 'assistant',
          text: s.text,
          createdAt: s.createdAt,
          finishReason: event.finishReason,
        };
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
    c.history.splice(at, 0, { message, startSeq, context: toContextMessage(message) });
    if (c.history.length > this.limits.historyLimit) c.history.splice(0, c.history.length - this.limits.historyLimit);
  }

  async snapshot(conversationId: string): Promise<Snapshot> {
    const c = this.get(conversationId);
    const snap: Snapshot = { seq: c.seq, history: c.history.map((h) => h.message) };
    if (c.streaming) snap.streaming = { replyId: c.streaming.replyId, text: c.streaming.text, seq: c.streaming.seq };
    return snap;
  }

  async eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined> {
    const c = this.get(conversationId);
    if (since > c.seq) return undefined; // a seq from another life of this conversation
    if (since === c.seq) return [];
    const first = c.log[0]?.event.seq;
    if (first === undefined || since + 1 < first) return undefined;
    // Seqs in the log are consecutive, so the position is arithmetic.
    return c.log.slice(since + 1 - first);
  }

  async findMessage(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined> {
    return this.conversations.get(conversationId)?.clientIds.get(clientMessageId);
  }

  async context(conversationId: string): Promise<ContextMessage[]> {
    const c = this.get(conversationId);
    // Replies that ended before any text (errors, early cancels) say nothing worth sending upstream.
    return c.history.filter((h) => h.message.role === 'user' || h.message.text).map((h) => h.context);
  }

  async enqueueReply(conversationId: string, reply: QueuedReply): Promise<boolean> {
    const c = this.get(conversationId);
    if (c.queue.length >= this.limits.maxQueuedReplies) return false;
    c.queue.push(reply);
    return true;
  }

  async nextReply(conversationId: string): Promise<QueuedReply | undefined> {
    return this.conversations.get(conversationId)?.queue.shift();
  }

  async removeReply(conversationId: string, replyId: string): Promise<QueuedReply | undefined> {
    const queue = this.conversations.get(conversationId)?.queue;
    const at = queue?.findIndex((r) => r.replyId === replyId) ?? -1;
    return at >= 0 ? queue!.splice(at, 1)[0] : undefined;
  }

  async clearReplies(conversationId: string): Promise<QueuedReply[]> {
    return this.conversations.get(conversationId)?.queue.splice(0) ?? [];
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
}

