// Conversation state that outlives a socket and is shared by every node: the
// seq counter, the retained event log that resume reads, the history of
// complete messages, the reply lease and queue, the member set and the
// clientMessageId index. Behind an async interface with two implementations:
// in memory (one node) and Redis (many nodes).
import { ConversationEvent, type ConversationEventOf, type HistoryMessage, type SendOptions, type User } from '../../shared/protocol.js';
import type { Delivery } from '../rooms/bus.js';
import type { ContextMessage } from '../reply/context.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before the store gives it its seq. */
export type EventInput = DistributiveOmit<ConversationEvent, 'seq'>;
export type MessageInput = Omit<ConversationEventOf<'message'>, 'seq'>;
export type Origin = NonNullable<Delivery['origin']>;

/** Identifies one reply event as written by the node that runs the reply. */
export interface Fence {
  /** Position of the event within its reply (0 = reply.start); a resent write with a seen ordinal is dropped. */
  ordinal: number;
}

export interface StoredEvent {
  readonly event: ConversationEvent;
  /** The event serialized once, shared by every member's socket and by replays. */
  readonly json: string;
}

/** Parse a retained or published event: written by this server, but checked all the same. */
export function parseEvent(json: string): ConversationEvent {
  return ConversationEvent.parse(JSON.parse(json));
}

export interface Snapshot {
  seq: number;
  history: HistoryMessage[];
  streaming?: { replyId: string; text: string; seq: number; model?: string };
}

export interface QueuedReply {
  replyId: string;
  inReplyTo: string;
  user: User;
  options: SendOptions | undefined;
}

/** What became of a `send`. */
export type Submission =
  | { kind: 'appended'; stored: StoredEvent; start: boolean }
  | { kind: 'duplicate'; stored: StoredEvent }
  | { kind: 'queue-full' };

export interface StoreLimits {
  historyLimit: number;
  eventLogMax: number;
  eventLogMaxAgeMs: number;
  /** Bytes of retained events per conversation (the in-memory store; Redis bounds by count). */
  eventLogMaxBytes: number;
  maxQueuedReplies: number;
}

export interface ConversationStore {
  /**
   * Give the event the next seq, retain it, fold it into the history, and
   * deliver it to every subscriber on every node. The store may keep and
   * change the object it is given: pass a fresh one. Reply events carry `fence`:
   * the store refuses them (RelayError) once this node no longer holds that
   * reply's lease, so a node presumed dead cannot write after its successor.
   */
  append(conversationId: string, event: EventInput, fence?: Fence): void | Promise<void>;
  /**
   * A user message and the reply it asks for, in one atomic step: a
   * clientMessageId seen before gives the original message back; a reply that
   * cannot start now is queued, and a full queue appends nothing. `start`
   * means this node now holds the conversation's reply lease and runs it.
   */
  submit(conversationId: string, message: MessageInput, reply: QueuedReply | undefined, origin: Origin): Promise<Submission>;
  /** The message a clientMessageId produced, if this conversation has seen it (submit still checks atomically). */
  findMessage(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined>;
  snapshot(conversationId: string): Promise<Snapshot>;
  /** Every retained event with seq > since, in order; undefined when `since` is not covered (reset). */
  eventsSince(conversationId: string, since: number): Promise<StoredEvent[] | undefined>;
  /** History as upstream messages with token counts, oldest first. */
  context(conversationId: string): Promise<ContextMessage[]>;

  /** The reply this node ran has ended: the lease passes to the next queued reply (returned), or is released. */
  nextReply(conversationId: string): Promise<QueuedReply | undefined>;
  removeQueued(conversationId: string, replyId: string): Promise<QueuedReply | undefined>;
  /** Tell every member that a queued reply will never run: its reply.end (cancelled), with no reply.start before it. */
  endQueued(conversationId: string, job: QueuedReply): Promise<void>;
  clearQueue(conversationId: string): Promise<QueuedReply[]>;
  /** The reply holding the lease (running on some node) and how many wait behind it. */
  replyState(conversationId: string): Promise<{ running: string | undefined; queued: number }>;
  /** Keep this node's lease on a running reply alive. */
  renewLease(conversationId: string, replyId: string): Promise<void>;
  /**
   * Take over a conversation whose lease holder is gone: end its reply for
   * everyone, and return the next queued reply for this node to run.
   */
  adopt(conversationId: string): Promise<QueuedReply | undefined>;

  /** The member set: one entry per subscribed socket, listed once per user. */
  addMember(conversationId: string, memberId: string, user: User): Promise<void>;
  removeMember(conversationId: string, memberId: string): Promise<void>;
  members(conversationId: string): Promise<User[]>;

  /** This node no longer needs the conversation (idle, no member here). */
  evict(conversationId: string): Promise<void>;
  /** Conversations held in this process's memory right now. */
  size(): number;
  close(): Promise<void>;
}
