// One conversation as the app sees it: history, the reply in flight, lastSeq,
// members; sends and tool results that survive reconnects; and the seq filter
// that turns an at-least-once stream (replays, idempotent re-sends) into
// exactly-once events.
import {
  describeIssues,
  frameCaps,
  ToolList,
  type ClientFrame,
  type ClientFrameOf,
  type ConversationEvent,
  type ConversationSettings,
  type HistoryMessage,
  type Limits,
  type Role,
  type SendOptions,
  type Siblings,
  type ServerFrameOf,
  type ToolSpec,
  type User,
} from '../shared/protocol.js';
import { AsyncQueue, Emitter } from './emitter.js';
import { SendError } from './errors.js';
import { endEntry, growEntry, startedEntry, streamingEntry } from './history-entry.js';
import { randomId } from './ids.js';
import { placeEntry } from './branches.js';
import { Outbox } from './outbox.js';
import type { AnswerType } from './requests.js';
import { catchUpHeld, Reply, trimReplies } from './reply.js';
import { findResult, resultFromFrame, resultsIn, toolEntry, type RespondOptions, type ToolResult, type ToolResultFrame } from './tool-results.js';

export type MessageFrame = ServerFrameOf<'message'>;
export type JoinedFrame = ServerFrameOf<'joined'>;
export type PresenceFrame = ServerFrameOf<'presence'>;
export type TypingFrame = ServerFrameOf<'typing'>;
export type ErrorFrame = ServerFrameOf<'error'>;

/** Everything a conversation reports, in the order it happened. `joined` means the state was replaced by a snapshot. */
export type ConversationUpdate = ConversationEvent | JoinedFrame | PresenceFrame | TypingFrame | ErrorFrame | ServerFrameOf<'left'>;

export interface ConversationEvents {
  message: MessageFrame;
  'reply.start': ServerFrameOf<'reply.start'>;
  'reply.delta': ServerFrameOf<'reply.delta'>;
  'reply.end': ServerFrameOf<'reply.end'>;
  'tool.result': ToolResultFrame;
  /** The active path moved to another branch: `history` was replaced. */
  switch: ServerFrameOf<'switch'>;
  /** The conversation's settings changed: see `settings`. */
  settings: ServerFrameOf<'settings'>;
  /** A user's role changed, or they were taken out (`removed`). */
  role: ServerFrameOf<'role'>;
  /** The server ended the membership (`reason` "deleted": the conversation is gone); the handle is done. */
  left: ServerFrameOf<'left'>;
  /** A snapshot replaced history (first join, or a resume the server could not cover). */
  joined: JoinedFrame;
  presence: PresenceFrame;
  typing: TypingFrame;
  error: ErrorFrame;
}

export interface SendOptionsArg extends SendOptions {
  /** Set to retry a send the app itself persisted; generated otherwise. */
  clientMessageId?: string;
  /** false appends the message without asking the model. */
  reply?: boolean;
  /** Tools the model may call; answer each call with `respond()`. */
  tools?: ToolSpec[];
  /** Ids of files uploaded with `client.uploadAttachment()`. */
  attachments?: string[];
}

/** What the conversation needs of the client that owns the socket. */
export interface ConversationHost {
  readonly isOpen: boolean;
  /** The user this client is (once welcomed). */
  readonly userId: string | undefined;
  readonly limits: Limits | undefined;
  readonly historyLimit: number;
  nextRef(): string;
  transmit(frame: ClientFrame): void;
  /** Send a frame carrying `ref`, resolved once the server has handled it without an error. */
  confirm(frame: ClientFrame & { ref: string }): Promise<void>;
  /** Send a frame answered by a frame of `type` carrying its ref: a tool result by its event, a regenerate by its reply's start, an invite by `invited`. */
  request<T extends AnswerType>(frame: ClientFrame & { ref: string }, type: T): Promise<ServerFrameOf<T>>;
  forget(conversation: Conversation): void;
}

/** Cancels and tool results waiting for a connection (one reply may ask for several calls). */
const MAX_QUEUED_REQUESTS = 32;
const ITERATOR_LIMIT = 2_000;

export class Conversation extends Emitter<ConversationEvents> {
  private historyValue: HistoryMessage[] = [];
  private membersValue: User[] = [];
  private settingsValue: ConversationSettings = {};
  private ownerValue: string | undefined;
  private roleValue: Role | undefined;
  private lastSeqValue: number | undefined;
  /** The life of the server's log that lastSeq counts in (joined.epoch). */
  private epoch: string | undefined;
  /** What the join on the current socket asked for: undefined until one is sent. */
  private joinSince: number | 'snapshot' | undefined;
  private readonly outbox: Outbox;
  private readonly queued: Array<{ run: () => void; reject: (e: Error) => void }> = [];
  private readonly replies = new Map<string, Reply>();
  /** The history entries still streaming, by replyId, so deltas append in O(1). */
  private readonly inflight = new Map<string, HistoryMessage>();
  private readonly iterators = new Set<AsyncQueue<ConversationUpdate>>();
  private leftValue = false;

  constructor(
    readonly id: string,
    private readonly host: ConversationHost,
    /** An invite token sent with the join: the role it grants is kept, so later joins need it no more. */
    private readonly invite?: string,
  ) {
    super();
    this.outbox = new Outbox(host);
  }

  get history(): readonly HistoryMessage[] {
    return this.historyValue;
  }
  get members(): readonly User[] {
    return this.membersValue;
  }
  /** The conversation's own settings (`configure`): title, system prompt, model and options. */
  get settings(): ConversationSettings {
    return this.settingsValue;
  }
  /** The id of the user who created it. */
  get owner(): string | undefined {
    return this.ownerValue;
  }
  /** What this user may do here (`joined.role`): `owner`, `member`, or `viewer` (only watch). */
  get role(): Role | undefined {
    return this.roleValue;
  }
  /** The seq of the last event applied; resume asks for everything after it. */
  get lastSeq(): number | undefined {
    return this.lastSeqValue;
  }
  /** The reply streaming right now, if any. */
  get streaming(): Reply | undefined {
    for (const id of this.inflight.keys()) return this.replies.get(id);
    return undefined;
  }
  /** Sends not yet acknowledged by a `message` frame. */
  get unacknowledged(): number {
    return this.outbox.size;
  }
  get left(): boolean {
    return this.leftValue;
  }

  /** The handle of a reply by id (created if not seen yet, e.g. right after send resolved). */
  reply(replyId: string): Reply {
    let r = this.replies.get(replyId);
    if (!r) {
      r = new Reply(replyId, this.id);
      this.replies.set(replyId, r);
      trimReplies(this.replies);
      // A handle taken after its results arrived (a reload, a late join) still has them.
      for (const result of resultsIn(this.historyValue, replyId)) r.addResult(result);
    }
    return r;
  }

  /** Append a user message; resolves with the acknowledged `message` (the original one if this was a re-send). */
  send(text: string, options: SendOptionsArg = {}): Promise<MessageFrame> {
    if (this.leftValue) return Promise.reject(new SendError('this conversation was left', 'not_found'));
    const max = this.host.limits?.maxTextChars;
    if (text.length === 0 || (max !== undefined && text.length > max)) {
      return Promise.reject(new SendError(`text must be 1-${max ?? '?'} characters`, 'bad_frame'));
    }
    const { clientMessageId = randomId(), reply, tools, attachments, ...model } = options;
    const checked = tools === undefined ? undefined : ToolList.safeParse(tools);
    if (checked && !checked.success) return Promise.reject(new SendError(`tools: ${describeIssues(checked.error)}`, 'bad_frame'));
    return this.outbox.add({
      type: 'send',
      conversationId: this.id,
      text,
      clientMessageId,
      ...(reply !== undefined ? { reply } : {}),
      ...(Object.keys(model).length ? { options: model } : {}),
      ...(checked ? { tools: checked.data } : {}),
      ...(attachments?.length ? { attachments } : {}),
    });
  }

  /**
   * A new version of one of your user messages, beside it: the active path
   * now ends with it (and its answer), and the old version stays a branch.
   * Resolves with the acknowledged `message`.
   */
  edit(messageId: string, text: string, options: Omit<SendOptionsArg, 'tools' | 'attachments'> = {}): Promise<MessageFrame> {
    if (this.leftValue) return Promise.reject(new SendError('this conversation was left', 'not_found'));
    const max = this.host.limits?.maxTextChars;
    if (text.length === 0 || (max !== undefined && text.length > max)) return Promise.reject(new SendError(`text must be 1-${max ?? '?'} characters`, 'bad_frame'));
    const { clientMessageId = randomId(), reply, ...model } = options;
    return this.outbox.add({
      type: 'edit',
      conversationId: this.id,
      messageId,
      text,
      clientMessageId,
      ...(reply !== undefined ? { reply } : {}),
      ...(Object.keys(model).length ? { options: model } : {}),
    });
  }

  /**
   * Answer a user message again (by default the last one; a reply's id names
   * the message it answered): a new reply beside the earlier ones, which stay
   * branches. Resolves with its handle once it starts.
   */
  async regenerate(messageId?: string, options: SendOptions = {}): Promise<Reply> {
    if (this.leftValue) throw new SendError('this conversation was left', 'not_found');
    const frame = { type: 'regenerate' as const, conversationId: this.id, ref: this.host.nextRef(), ...(messageId ? { messageId } : {}), ...(Object.keys(options).length ? { options } : {}) };
    const started = await this.host.request(frame, 'reply.start');
    return this.reply(started.replyId);
  }

  /** Make the branch through `messageId` the active path, for every member (the owner's to do). */
  switchTo(messageId: string): Promise<void> {
    return this.request({ type: 'switch', conversationId: this.id, ref: this.host.nextRef(), messageId });
  }

  /** Give a user a role here (the owner's to do); in a private conversation that is the invitation. */
  setRole(userId: string, role: Role): Promise<void> {
    return this.request({ type: 'role', conversationId: this.id, ref: this.host.nextRef(), userId, role });
  }

  /** An invite token to hand out (the owner's to do): whoever joins with it (`client.conversation(id, { invite })`) gets the role. */
  async createInvite(options: { role?: 'member' | 'viewer'; ttlMs?: number } = {}): Promise<{ token: string; role: Role; expiresAt: number }> {
    if (this.leftValue) throw new SendError('this conversation was left', 'not_found');
    const { token, role, expiresAt } = await this.host.request({ type: 'invite', conversationId: this.id, ref: this.host.nextRef(), ...options }, 'invited');
    return { token, role, expiresAt };
  }

  /** Take a user out (the owner's to do): they are told with `left` and may not come back. */
  removeUser(userId: string): Promise<void> {
    return this.request({ type: 'remove', conversationId: this.id, ref: this.host.nextRef(), userId });
  }

  /** Change the conversation's settings for its next replies; null puts a field back to the server's default. */
  configure(patch: Omit<ClientFrameOf<'configure'>, 'type' | 'ref' | 'conversationId'>): Promise<void> {
    return this.request({ type: 'configure', conversationId: this.id, ref: this.host.nextRef(), ...patch });
  }

  private request(frame: ClientFrame & { ref: string }): Promise<void> {
    if (this.leftValue) return Promise.reject(new SendError('this conversation was left', 'not_found'));
    return this.host.confirm(frame);
  }

  /** Send and return the handle of the reply it starts. */
  async ask(text: string, options: Omit<SendOptionsArg, 'reply'> = {}): Promise<Reply> {
    const m = await this.send(text, options);
    if (!m.replyId) throw new SendError('the server started no reply for this message', 'internal');
    return this.reply(m.replyId);
  }

  /**
   * Cancel the running reply, or the named one (running or queued). Resolves
   * once the server accepted it. A queued reply that is cancelled gets a
   * reply.end (cancelled) with no reply.start; its handle is also finished
   * here, in case that frame is still on its way.
   */
  cancel(replyId?: string): Promise<void> {
    const attempt = (): Promise<void> => {
      const frame = { type: 'cancel' as const, conversationId: this.id, ref: this.host.nextRef(), ...(replyId ? { replyId } : {}) };
      return this.host.confirm(frame).then(
        () => {
          const r = replyId ? this.replies.get(replyId) : undefined;
          if (r && !r.started) r.finish({ finishReason: 'cancelled' });
        },
        (err: unknown) => {
          if (!(err instanceof SendError)) throw err;
          // The socket dropped before the server answered: cancel again once back.
          if (err.code === 'disconnected' && !this.leftValue) return this.whenOpen(attempt);
          // It ended on its own before the cancel got there: that is what the app wanted.
          const r = replyId ? this.replies.get(replyId) : this.streaming;
          if (err.code === 'not_found' && (!r || r.done)) return;
          throw err;
        },
      );
    };
    return this.host.isOpen ? attempt() : this.whenOpen(attempt);
  }

  /**
   * Answer one tool call of a reply that ended with `tool_calls`. Resolves with
   * the result once the server accepted it (its `tool.result` event); rejects
   * with the server's error: `not_found` for an unknown or already answered
   * call, `forbidden` when someone else asked. Sent again after a lost
   * connection. Once every call is answered the relay continues on its own:
   * see `reply.continuation`.
   */
  respond(replyId: string, toolCallId: string, output: string, options: RespondOptions = {}): Promise<ToolResult> {
    if (this.leftValue) return Promise.reject(new SendError('this conversation was left', 'not_found'));
    if (output.length > frameCaps.textChars) return Promise.reject(new SendError(`output must be at most ${frameCaps.textChars} characters`, 'bad_frame'));
    const isError = options.isError ?? false;
    const attempt = (): Promise<ToolResult> => {
      const frame = { type: 'tool.result' as const, conversationId: this.id, ref: this.host.nextRef(), replyId, toolCallId, output, ...(isError ? { isError } : {}) };
      return this.host.request(frame, 'tool.result').then(resultFromFrame, (err: unknown) => {
        if (!(err instanceof SendError)) throw err;
        if (err.code === 'disconnected' && !this.leftValue) return this.whenOpen(attempt);
        // A repeat after a lost connection: the first one got there, and the replay or the snapshot brought it back.
        const known = this.replies.get(replyId)?.toolResults.get(toolCallId) ?? findResult(this.historyValue, replyId, toolCallId);
        if (err.code === 'not_found' && known?.output === output && known.isError === isError) return known;
        throw err;
      });
    };
    return this.host.isOpen ? attempt() : this.whenOpen(attempt);
  }

  private whenOpen<T>(run: () => Promise<T>): Promise<T> {
    if (this.queued.length >= MAX_QUEUED_REQUESTS) return Promise.reject(new SendError('too many requests waiting for a connection', 'rate_limited'));
    return new Promise((resolve, reject) => this.queued.push({ run: () => void run().then(resolve, reject), reject }));
  }

  /** Tell the others this user is typing (the server throttles it). */
  typing(): void {
    if (this.host.isOpen && !this.leftValue) this.host.transmit({ type: 'typing', conversationId: this.id });
  }

  /** Stop receiving this conversation; unacknowledged sends are rejected. */
  async leave(): Promise<void> {
    if (this.leftValue) return;
    const wasOpen = this.host.isOpen;
    this.dispose(new SendError('left the conversation', 'not_found'));
    this.host.forget(this);
    if (wasOpen) await this.host.confirm({ type: 'leave', conversationId: this.id, ref: this.host.nextRef() }).catch(() => {});
  }

  /** Every update (events, snapshots, presence, typing, errors) in order. Fails if the consumer falls far behind. */
  updates(): AsyncIterableIterator<ConversationUpdate> {
    const queue: AsyncQueue<ConversationUpdate> = new AsyncQueue(ITERATOR_LIMIT, () => this.iterators.delete(queue));
    if (this.leftValue) queue.end();
    else this.iterators.add(queue);
    return queue;
  }

  // ------------------------------------------------------------ called by the client

  /** @internal A socket is open (welcome received): join, then re-send whatever is unacknowledged. */
  resume(): void {
    this.joinSince = this.lastSeqValue ?? 'snapshot';
    this.host.transmit({
      type: 'join',
      conversationId: this.id,
      ref: this.host.nextRef(),
      ...(this.lastSeqValue !== undefined ? { since: this.lastSeqValue, ...(this.epoch ? { epoch: this.epoch } : {}) } : {}),
      ...(this.invite ? { invite: this.invite } : {}),
    });
    this.outbox.resend();
    for (const q of this.queued.splice(0)) q.run();
  }

  /** @internal The socket went away. */
  suspend(): void {
    this.joinSince = undefined;
    this.outbox.suspend();
  }

  /** @internal The client is closing for good. */
  dispose(reason: Error): void {
    this.leftValue = true;
    this.outbox.rejectAll(reason);
    for (const q of this.queued.splice(0)) q.reject(reason);
    for (const r of this.replies.values()) {
      if (!r.done) r.finish({ finishReason: 'error', error: { code: 'internal', message: reason.message } });
    }
    for (const it of this.iterators) it.end();
    this.iterators.clear();
  }

  /** @internal Route one frame addressed to this conversation. */
  receive(frame: ConversationUpdate | ServerFrameOf<'left'>): void {
    switch (frame.type) {
      case 'joined':
        return this.joined(frame);
      case 'left':
        // Only a `left` the server sends of its own accord carries a reason: a leave of ours is answered without one.
        if (frame.reason === undefined || this.leftValue) return;
        this.dispose(new SendError(`the conversation was ${frame.reason}`, 'not_found'));
        this.host.forget(this);
        return this.publish('left', frame);
      case 'presence':
        this.membersValue = frame.members;
        return this.publish('presence', frame);
      case 'typing':
        return this.publish('typing', frame);
      case 'error':
        return this.publish('error', frame);
      default:
        return this.event(frame);
    }
  }

  /** @internal An error answering one of our refs: true if it was a pending send's. */
  rejectSend(ref: string, error: ErrorFrame): boolean {
    return this.outbox.reject(ref, error);
  }

  // ------------------------------------------------------------ internals

  private joined(frame: JoinedFrame): void {
    this.membersValue = frame.members;
    if (frame.owner !== undefined) this.ownerValue = frame.owner;
    if (frame.role !== undefined) this.roleValue = frame.role;
    const covered = typeof this.joinSince === 'number' && !frame.reset;
    // A covered resume stays in the same life of the server's log; anything else starts from this frame's.
    if (!covered || frame.epoch) this.epoch = frame.epoch;
    this.joinSince = undefined;
    // A covered resume is followed by the replayed events themselves; its `seq`
    // is where the replay will end, so lastSeq must not jump there yet.
    if (covered) return;
    this.applySnapshot(frame);
    this.publish('joined', frame);
  }

  private applySnapshot(frame: JoinedFrame): void {
    const limit = this.host.historyLimit;
    this.historyValue = frame.history.slice(-limit).map((m) => ({ ...m }));
    this.settingsValue = frame.settings ?? {};
    this.inflight.clear();
    this.lastSeqValue = frame.seq;
    const s = frame.streaming;
    if (s) {
      const entry = streamingEntry(s);
      this.historyValue.push(entry);
      this.inflight.set(s.replyId, entry);
      const r = this.reply(s.replyId);
      r.start(s.model);
      r.catchUp(s);
    }
    catchUpHeld(this.replies, this.historyValue, s?.replyId);
  }

  private event(e: ConversationEvent): void {
    if (e.type === 'message') this.outbox.acknowledge(e);
    // Replays after a resume and answers to idempotent re-sends repeat seqs the app has already seen.
    if (this.lastSeqValue !== undefined && e.seq <= this.lastSeqValue) return;
    this.lastSeqValue = e.seq;
    switch (e.type) {
      case 'message':
        this.ownerValue ??= e.message.author.id;
        this.pushHistory({ ...e.message }, e.message.parentId, e.siblings);
        if (e.replyId) this.reply(e.replyId);
        break;
      case 'reply.start': {
        const entry = startedEntry(e.replyId, e.model, e.parentId, e.inReplyTo);
        this.pushHistory(entry, e.parentId, e.siblings);
        this.inflight.set(e.replyId, entry);
        const r = this.reply(e.replyId);
        r.start(e.model, e.inReplyTo);
        // A continuation answers a reply, not a message: link the two so an app can follow a tool loop.
        this.replies.get(e.inReplyTo)?.continueWith(r);
        break;
      }
      case 'reply.delta': {
        const entry = this.inflight.get(e.replyId);
        if (entry) growEntry(entry, e);
        this.reply(e.replyId).append(e);
        break;
      }
      case 'reply.end': {
        const entry = this.inflight.get(e.replyId);
        this.inflight.delete(e.replyId);
        if (entry) endEntry(entry, e);
        const { finishReason, usage, toolCalls, error, redacted } = e;
        this.reply(e.replyId).finish({ finishReason, ...(usage ? { usage } : {}), ...(toolCalls ? { toolCalls } : {}), ...(error ? { error } : {}), ...(redacted ? { redacted } : {}) });
        break;
      }
      case 'tool.result':
        this.pushHistory(toolEntry(e));
        this.replies.get(e.replyId)?.addResult(resultFromFrame(e));
        break;
      case 'switch':
        this.historyValue = e.history.slice(-this.host.historyLimit).map((m) => ({ ...m }));
        break;
      case 'settings':
        this.ownerValue ??= e.author.id;
        this.settingsValue = e.settings;
        break;
      case 'role':
        if (e.userId === this.host.userId && e.role !== 'removed') this.roleValue = e.role;
        break;
    }
    this.publish(e.type, e);
  }

  private pushHistory(m: HistoryMessage, parentId?: string, siblings?: Siblings): void {
    placeEntry(this.historyValue, m, parentId, siblings);
    const over = this.historyValue.length - this.host.historyLimit;
    if (over > 0) this.historyValue.splice(0, over);
  }

  private publish<K extends keyof ConversationEvents>(name: K, frame: ConversationEvents[K] & ConversationUpdate): void {
    this.emit(name, frame);
    for (const it of this.iterators) it.push(frame);
  }
}
