// Conversation state that outlives a socket and is shared by every node, split
// by concern: the event log (seq, retained events, the history folded from
// them), the reply lease and queue, the member set, and the clientMessageId
// index. A store stores and answers; it delivers nothing (fan-out is the bus's,
// called by the conversation). Two implementations: in memory (one node) and
// Redis (many nodes), held to one contract by the behaviour suite.
import { z } from 'zod';
import { Attachment, ConversationEvent, ErrorCode, FinishReason, SendOptions, Siblings, ToolSpec, User, type ClientFrameOf, type ConversationEventOf, type ConversationSettings, type ConversationSummary, type HistoryMessage, type ServerFrameOf } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import type { ContextMessage } from '../reply/context.js';
import type { RetentionLimits } from '../history/retention.js';
import type { UpstreamCursor } from '../upstream/pieces.js';
import type { Placement } from '../history/branches.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before the store gives it its seq. */
export type EventInput = DistributiveOmit<ConversationEvent, 'seq'>;
export type MessageInput = Omit<ConversationEventOf<'message'>, 'seq'>;
/** What a conversation's history gains an entry from as it is written: a user message or a tool result. */
export type EntryInput = MessageInput | Omit<ConversationEventOf<'tool.result'>, 'seq'>;
export type ReplyEventInput = Exclude<EventInput, { type: 'message' | 'tool.result' | 'switch' | 'settings' | 'role' }>;

/** A `configure`: each field set, or (null) back to the server's default. */
export type SettingsPatch = Omit<ClientFrameOf<'configure'>, 'type' | 'ref' | 'conversationId'>;

/** A change beside history: the active path moves to the branch through a message, or the settings change. */
export type StateChange =
  | { type: 'switch'; messageId: string; author: User }
  | { type: 'settings'; patch: SettingsPatch; author: User }
  | { type: 'role'; userId: string; role: ConversationEventOf<'role'>['role']; author: User };

/** Roles the owner gave in one conversation: user id → role ("removed": taken out). */
export type Roles = Record<string, ConversationEventOf<'role'>['role']>;

/** How many clientMessageIds a conversation remembers for idempotent send. */
export const CLIENT_IDS_KEPT = 1_000;

/** A message of a context the client brings along (the OpenAI HTTP API is stateless). */
export const ClientMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });
export type ClientMessage = z.infer<typeof ClientMessage>;

/** A reply that asked to run: running, or waiting in its conversation's queue. */
export const ReplyJob = z.object({
  replyId: z.string(),
  inReplyTo: z.string(),
  user: User,
  options: z.optional(SendOptions),
  /** The context to answer instead of the conversation's history, when the client sent its own. */
  context: z.array(ClientMessage).optional(),
  /** The API key that asked for it: its usage is counted under that key, however the reply ends. */
  keyId: z.string().optional(),
  /** The tools the sender offered: every step of its tool loop offers them again. */
  tools: z.array(ToolSpec).optional(),
  /** Which step of a tool loop this reply is (0: the answer to the message itself). */
  step: z.number().int().nonnegative().optional(),
  /** A regenerated reply: the parent it takes beside the earlier answers, rather than the end of the active path. */
  placeAt: z.object({ parentId: z.string(), siblings: z.optional(Siblings) }).optional(),
});
export type ReplyJob = z.infer<typeof ReplyJob>;

/** Identifies one reply event as written by the node that runs the reply. */
export interface Fence {
  /** Position of the event within its reply (0 = reply.start); a resent write with a seen ordinal is dropped. */
  ordinal: number;
  /**
   * A shared store keeps these with the reply in flight, for the node that
   * adopts it if this one is lost: the job (with the reply.start), and where
   * its background response stands once this delta is written, so that
   * node re-attaches right after it.
   */
  job?: ReplyJob;
  cursor?: UpstreamCursor;
}

export interface StoredEvent {
  readonly event: ConversationEvent;
  /** The event serialized once, shared by every member's socket and by replays. */
  readonly json: string;
  /** The life of the log it was appended to (set on what append and submit return). */
  readonly epoch?: string;
}

/** Retained events after a seq, in the life of the log they belong to. */
export interface Replay {
  events: StoredEvent[];
  epoch: string | undefined;
}

/**
 * The conversation's log is gone (a Redis that restarted empty): a reply
 * cannot be fenced against it any more, and every member must start over.
 */
export class LogLostError extends RelayError {
  override name = 'LogLostError';
  constructor() {
    super('internal', 'the conversation log was lost');
  }
}

/** Parse a retained or published event: written by this server, but checked all the same. */
export function parseEvent(json: string): ConversationEvent {
  return ConversationEvent.parse(JSON.parse(json));
}

export interface Snapshot {
  seq: number;
  /** The life of the log; undefined while the conversation has none. */
  epoch?: string;
  /** The active path, with each message's place among its siblings. */
  history: HistoryMessage[];
  settings?: ConversationSettings;
  /** The id of the user who created it. */
  owner?: string;
  streaming?: NonNullable<ServerFrameOf<'joined'>['streaming']>;
}

/** What became of a `send`. */
export type Submission =
  | { kind: 'appended'; stored: StoredEvent; start: boolean }
  | { kind: 'duplicate'; stored: StoredEvent }
  | { kind: 'queue-full' };

export interface StoreLimits extends RetentionLimits {
  historyLimit: number;
  maxQueuedReplies: number;
  /** How long usage ledger entries are kept, and how many at most (the oldest go first). */
  ledgerRetentionMs: number;
  ledgerMaxEntries: number;
  /** How long a conversation no socket needs is kept in memory (Redis keeps it for REDIS_RETENTION_MS). */
  conversationIdleMs: number;
}

/** The conversation's events: seq, the retained log that resume reads, and the history folded from them. */
export interface EventLog {
  /**
   * Give the event the next seq and retain it. The log may keep and change the
   * object it is given: pass a fresh one. Reply events carry `fence`: the log
   * refuses them (RelayError) once this node no longer holds that reply's
   * lease, so a node presumed dead cannot write after its successor. In one
   * process the answer is synchronous (no promise per token). Undefined: this
   * very write was made before (resent after a reconnect); members get it from
   * the log, so there is nothing to publish. A reply.end carries its `bill`:
   * the ledger entry is written in the same step as the end, so neither is
   * ever written without the other, and a resent or refused end bills nothing.
   */
  append(conversationId: string, event: ReplyEventInput, fence?: Fence, bill?: LedgerEntry): StoredEvent | Promise<StoredEvent | undefined>;
  snapshot(conversationId: string): Promise<Snapshot>;
  /**
   * Every retained event with seq > since, in order; undefined when `since`
   * is not covered (reset), or belongs to another life of the log (`epoch`).
   */
  eventsSince(conversationId: string, since: number, epoch?: string): Promise<Replay | undefined>;
  /** The active path as upstream messages with token counts, oldest first, and the settings a reply starting now uses. */
  context(conversationId: string): Promise<{ messages: ContextMessage[]; settings: ConversationSettings }>;
  /**
   * Move the active path (to the newest end of the branch through the message:
   * not_found when history has no such message) or change the settings; the
   * event that says so, with the whole new path or settings, is written with it.
   */
  change(conversationId: string, change: StateChange): Promise<StoredEvent>;
  /** Every entry of history, on every branch, oldest first (a data-protection export). */
  entries(conversationId: string): Promise<HistoryMessage[]>;
  /** The conversation's own settings (a send's model and options default to them), its owner and the roles given. */
  meta(conversationId: string): Promise<Meta>;
  /** This node no longer needs the conversation (idle, no member here): drop what it holds of it. */
  evict(conversationId: string): Promise<void>;
  /** Conversations whose state this process holds in memory right now. */
  size(): number;
}

/** clientMessageId → the message it produced, for idempotent send. */
export interface MessageIds {
  /** The message a clientMessageId produced, if this conversation has seen it (submit still checks atomically). */
  find(conversationId: string, clientMessageId: string): Promise<StoredEvent | undefined>;
}

/** Where an orphaned reply stands: its last ordinal written, and its background response's cursor then. */
export interface Resumable {
  ordinal: number;
  cursor: UpstreamCursor;
}

/**
 * What adopting a conversation hands over: a reply whose node is gone (with
 * the job that asked for it, and where it stands, where known), or one to run.
 */
export type Adopted = { orphan: string; asked?: ReplyJob; resumable?: Resumable } | { job: ReplyJob };

/** Who runs a conversation's reply (the lease) and what waits behind it. */
export interface ReplyLeases {
  /**
   * The reply this node ran (`endedReplyId`) has ended: the lease passes to
   * the next queued reply (returned), or is released. Nothing happens when
   * this node no longer holds that reply's lease.
   */
  next(conversationId: string, endedReplyId: string): Promise<ReplyJob | undefined>;
  removeQueued(conversationId: string, replyId: string): Promise<ReplyJob | undefined>;
  /**
   * Take the lease for a reply that answers no new message (a regenerate),
   * only while no reply runs or waits: false otherwise.
   */
  claimIdle(conversationId: string, job: ReplyJob): Promise<boolean>;
  clearQueue(conversationId: string): Promise<ReplyJob[]>;
  /** Who asked for a reply that runs or waits (undefined: no such reply, or its job is not kept). */
  asker(conversationId: string, replyId: string): Promise<string | undefined>;
  /** The reply holding the lease (running on some node) and how many wait behind it. */
  state(conversationId: string): Promise<{ running: string | undefined; queued: number }>;
  /** Keep this node's lease on a running reply alive. */
  renew(conversationId: string, replyId: string): Promise<void>;
  /**
   * Take over a conversation whose lease holder is gone: an orphaned reply (now
   * leased to this node, to be ended), or the next queued reply to run here.
   */
  adopt(conversationId: string): Promise<Adopted | undefined>;
}

/** The member set: one entry per subscribed socket, listed once per user. */
export interface MemberRegistry {
  add(conversationId: string, memberId: string, user: User): Promise<void>;
  remove(conversationId: string, memberId: string): Promise<void>;
  list(conversationId: string): Promise<User[]>;
}

/** An operator-issued API key, as listed (its secret is kept only hashed). */
export const ApiKeyRecord = z.object({
  id: z.string(),
  userId: z.string(),
  name: z.string().optional(),
  /** Conversations its holder may bind an exchange to (`X-Conversation-Id`); none when absent. */
  conversations: z.array(z.string()).optional(),
  createdAt: z.number(),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>;

export interface KeyUsage {
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

/** Operator-issued API keys for the HTTP API, shared by every node: a revoked key stops at once everywhere. */
export interface ApiKeys {
  /** Store a new key under its secret's hash. */
  add(record: ApiKeyRecord, hash: string): Promise<void>;
  /** The key whose secret hashes to `hash`, unless revoked. */
  byHash(hash: string): Promise<ApiKeyRecord | undefined>;
  list(): Promise<Array<ApiKeyRecord & { usage: KeyUsage }>>;
  revoke(id: string): Promise<boolean>;
  /** Count one exchange's usage against the key. */
  addUsage(id: string, usage: { promptTokens: number; completionTokens: number }): Promise<void>;
}

/**
 * One reply's line in the usage ledger: what it spent however it ended, and who
 * asked. It holds no message text, and outlives its conversation.
 */
export const LedgerEntry = z.object({
  replyId: z.string(),
  conversationId: z.string(),
  userId: z.string(),
  /** The API key it was asked through, if any. */
  keyId: z.string().optional(),
  model: z.string(),
  dialect: z.string(),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  cachedTokens: z.number().int().nonnegative().optional(),
  reasoningTokens: z.number().int().nonnegative().optional(),
  /** `upstream`: the provider's count; `estimated`: the relay's tokenizer. */
  source: z.enum(['upstream', 'estimated']),
  finishReason: FinishReason,
  errorCode: z.optional(ErrorCode),
  /** At the model's prices in the model table, where it has them. */
  costUsd: z.number().nonnegative().optional(),
  /** When the reply ended (ms since the epoch). */
  at: z.number(),
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;

export interface LedgerQuery {
  /** from <= at < to, ms since the epoch. */
  from: number;
  to: number;
  userId?: string;
}

/** The usage ledger, written only with reply ends (EventLog.append); read a page at a time, oldest first. */
export interface UsageLedger {
  read(query: LedgerQuery, page: (entries: LedgerEntry[]) => void): Promise<void>;
}

/** An uploaded file as the store keeps it: who uploaded it (only they may send it), and until when. */
export const AttachmentRecord = z.object({
  ...Attachment.shape,
  userId: z.string(),
  createdAt: z.number(),
  expiresAt: z.number(),
});
export type AttachmentRecord = z.infer<typeof AttachmentRecord>;

export interface AttachmentLimits {
  /** Bytes one user's attachments may take together, and how many they may hold. */
  userBytes: number;
  userCount: number;
  /** Bytes the whole store may hold. */
  totalBytes: number;
}

/** Why an upload was not kept. */
export type AttachmentRefusal = 'user-quota' | 'full';

/**
 * Uploaded files, each until its `expiresAt` (the backend forgets it then:
 * `get` and `data` answer undefined), within the per-user and total bounds.
 */
export interface AttachmentStore {
  put(record: AttachmentRecord, data: Buffer): Promise<'stored' | AttachmentRefusal>;
  get(id: string): Promise<AttachmentRecord | undefined>;
  data(id: string): Promise<Buffer | undefined>;
  /** A message of this conversation carries it: the conversation's members may fetch it from now on. */
  reference(id: string, conversationId: string): Promise<void>;
  /** Conversations whose messages carry it. */
  referencedBy(id: string): Promise<string[]>;
  /** A user's live uploads, oldest first (a data-protection export). */
  ofUser(userId: string): Promise<AttachmentRecord[]>;
  /** Every upload of a user goes now, with its bytes off the user's and the store's totals (a data-protection erase). Resolves with how many went. */
  removeUser(userId: string): Promise<number>;
}

/** What decides who may do what in a conversation, and how its replies run. */
export interface Meta {
  settings: ConversationSettings;
  owner: string | undefined;
  roles: Roles;
}

/** Conversations one user's list keeps at most: the least recently visited go first. */
export const LISTED_PER_USER = 1_000;

/**
 * Each user's conversations: those they joined or wrote to, with where they
 * last saw each. Read a page at a time, by each conversation's last activity.
 */
export interface ConversationLists {
  /** The user is in the conversation, and has seen it up to `seenSeq`: it is on their list. */
  visit(userId: string, conversationId: string, seenSeq: number): Promise<void>;
  /** The user's conversations active before `before` (all of them, without it), newest first. */
  page(userId: string, before: number | undefined): Promise<ConversationSummary[]>;
  /** The user's list goes (a data-protection erase). */
  forgetUser(userId: string): Promise<void>;
}

export interface Store {
  readonly log: EventLog;
  readonly lists: ConversationLists;
  readonly ledger: UsageLedger;
  readonly ids: MessageIds;
  readonly replies: ReplyLeases;
  readonly members: MemberRegistry;
  readonly apiKeys: ApiKeys;
  /**
   * A user message and the reply it asks for, in one atomic step across the
   * parts: a clientMessageId seen before gives the original message back; a
   * reply that cannot start now is queued, and a full queue appends nothing.
   * `start` means this node now holds the conversation's reply lease and runs it.
   */
  /**
   * Append a message or a tool result, and queue `reply` with it (started at
   * once when nothing runs) in one step. It goes at the end of the active path,
   * or (`placement`, an edit) beside the message it edits. An entry whose key was seen before
   * (a message's clientMessageId, a tool result's call) is not written again:
   * the answer is what it produced the first time.
   */
  submit(conversationId: string, entry: EntryInput, reply: ReplyJob | undefined, placement?: Placement): Promise<Submission>;
  /**
   * Remove the conversation for good: its events, history, settings, queue and
   * members, and it from every list (the usage ledger, which holds no text,
   * stays). It stays deleted: a write or a join answers not_found.
   */
  deleteConversation(conversationId: string): Promise<void>;
  /**
   * Erase one user's words from a conversation (a data-protection erase):
   * their messages and tool results, and the replies that answered them, keep
   * their place with no text, marked `redacted` (history/erase.ts); the
   * retained events, which hold the text, go (a resume starts over), and so
   * do their clientMessageIds. A reply streaming now is left to end.
   * Resolves with how many entries changed.
   */
  eraseAuthor(conversationId: string, userId: string): Promise<number>;
  isDeleted(conversationId: string): Promise<boolean>;
  close(): Promise<void>;
}
