// One conversation as the app sees it: history, the reply in flight, lastSeq,
// members; sends that survive reconnects; and the seq filter that turns an
// at-least-once stream (replays, idempotent re-sends) into exactly-once events.
import type {
  ClientFrame,
  ClientFrameOf,
  ConversationEvent,
  HistoryMessage,
  Limits,
  SendOptions,
  ServerFrameOf,
  User,
} from '../shared/protocol.js';
import { AsyncQueue, Emitter } from './emitter.js';
import { SendError } from './errors.js';
import { endEntry, growEntry, startedEntry, streamingEntry } from './history-entry.js';
import { randomId } from './ids.js';
import { Reply, trimReplies } from './reply.js';

export type MessageFrame = ServerFrameOf<'message'>;
export type JoinedFrame = ServerFrameOf<'joined'>;
export type PresenceFrame = ServerFrameOf<'presence'>;
export type TypingFrame = ServerFrameOf<'typing'>;
export type ErrorFrame = ServerFrameOf<'error'>;

/** Everything a conversation reports, in the order it happened. `joined` means the state was replaced by a snapshot. */
export type ConversationUpdate = ConversationEvent | JoinedFrame | PresenceFrame | TypingFrame | ErrorFrame;

export interface ConversationEvents {
  message: MessageFrame;
  'reply.start': ServerFrameOf<'reply.start'>;
  'reply.delta': ServerFrameOf<'reply.delta'>;
  'reply.end': ServerFrameOf<'reply.end'>;
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
}

/** What the conversation needs of the client that owns the socket. */
export interface ConversationHost {
  readonly isOpen: boolean;
  readonly limits: Limits | undefined;
  readonly historyLimit: number;
  nextRef(): string;
  transmit(frame: ClientFrame): void;
  /** Send a frame carrying `ref`, resolved once the server has handled it without an error. */
  confirm(frame: ClientFrame & { ref: string }): Promise<void>;
  forget(conversation: Conversation): void;
}

interface PendingSend {
  frame: ClientFrameOf<'send'>;
  /** Refs it went out with on the current socket (an error answers one of them). */
  refs: string[];
  resolve: (m: MessageFrame) => void;
  reject: (e: Error) => void;
}

/** Unacknowledged sends one conversation may hold; past it send() rejects at once. */
const MAX_PENDING_SENDS = 16;
/** Cancels waiting for a connection. */
const MAX_QUEUED_CANCELS = 8;
const ITERATOR_LIMIT = 2_000;

export class Conversation extends Emitter<ConversationEvents> {
  private historyValue: HistoryMessage[] = [];
  private membersValue: User[] = [];
  private lastSeqValue: number | undefined;
  /** The life of the server's log that lastSeq counts in (joined.epoch). */
  private epoch: string | undefined;
  /** What the join on the current socket asked for: undefined until one is sent. */
  private joinSince: number | 'snapshot' | undefined;
  private readonly pending = new Map<string, PendingSend>();
  private readonly queuedCancels: Array<{ run: () => void; reject: (e: Error) => void }> = [];
  private readonly replies = new Map<string, Reply>();
  /** The history entries still streaming, by replyId, so deltas append in O(1). */
  private readonly inflight = new Map<string, HistoryMessage>();
  private readonly iterators = new Set<AsyncQueue<ConversationUpdate>>();
  private leftValue = false;

  constructor(
    readonly id: string,
    private readonly host: ConversationHost,
  ) {
    super();
  }

  get history(): readonly HistoryMessage[] {
    return this.historyValue;
  }
  get members(): readonly User[] {
    return this.membersValue;
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
    return this.pending.size;
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
    if (this.pending.size >= MAX_PENDING_SENDS) {
      return Promise.reject(new SendError(`more than ${MAX_PENDING_SENDS} sends waiting for acknowledgement`, 'rate_limited'));
    }
    const { clientMessageId = randomId(), reply, ...model } = options;
    const existing = this.pending.get(clientMessageId);
    if (existing) return new Promise((resolve, reject) => this.chain(existing, resolve, reject));
    const frame: ClientFrameOf<'send'> = {
      type: 'send',
      conversationId: this.id,
      text,
      clientMessageId,
      ...(reply !== undefined ? { reply } : {}),
      ...(Object.keys(model).length ? { options: model } : {}),
    };
    return new Promise((resolve, reject) => {
      const p: PendingSend = { frame, refs: [], resolve, reject };
      this.pending.set(clientMessageId, p);
      if (this.host.isOpen) this.transmitSend(p);
    });
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

  private whenOpen(run: () => Promise<void>): Promise<void> {
    if (this.queuedCancels.length >= MAX_QUEUED_CANCELS) return Promise.reject(new SendError('too many cancels queued', 'rate_limited'));
    return new Promise((resolve, reject) => this.queuedCancels.push({ run: () => void run().then(resolve, reject), reject }));
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
    });
    for (const p of this.pending.values()) this.transmitSend(p);
    for (const c of this.queuedCancels.splice(0)) c.run();
  }

  /** @internal The socket went away. */
  suspend(): void {
    this.joinSince = undefined;
    for (const p of this.pending.values()) p.refs = [];
  }

  /** @internal The client is closing for good. */
  dispose(reason: Error): void {
    this.leftValue = true;
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    for (const c of this.queuedCancels.splice(0)) c.reject(reason);
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
        return;
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
    for (const [id, p] of this.pending) {
      if (!p.refs.includes(ref)) continue;
      this.pending.delete(id);
      p.reject(new SendError(error.message, error.code));
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ internals

  private transmitSend(p: PendingSend): void {
    const ref = this.host.nextRef();
    // Bounded: a send goes out once per socket, plus once per resync after dropped frames.
    if (p.refs.push(ref) > 8) p.refs.shift();
    this.host.transmit({ ...p.frame, ref });
  }

  private chain(p: PendingSend, resolve: (m: MessageFrame) => void, reject: (e: Error) => void): void {
    const { resolve: r0, reject: j0 } = p;
    p.resolve = (m) => (r0(m), resolve(m));
    p.reject = (e) => (j0(e), reject(e));
  }

  private joined(frame: JoinedFrame): void {
    this.membersValue = frame.members;
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
    // Replies the app is holding whose end happened while we were away.
    for (const r of this.replies.values()) {
      if (r.done || r.id === s?.replyId) continue;
      const done = this.historyValue.find((m) => m.id === r.id && m.role === 'assistant');
      if (done) r.finish({ finishReason: done.finishReason ?? 'stop', ...(done.toolCalls ? { toolCalls: done.toolCalls } : {}) }, done);
      else if (r.started) r.finish({ finishReason: 'error', error: { code: 'not_found', message: 'the reply is no longer retained' } });
    }
  }

  private event(e: ConversationEvent): void {
    if (e.type === 'message') this.acknowledge(e);
    // Replays after a resume and answers to idempotent re-sends repeat seqs the app has already seen.
    if (this.lastSeqValue !== undefined && e.seq <= this.lastSeqValue) return;
    this.lastSeqValue = e.seq;
    switch (e.type) {
      case 'message':
        this.pushHistory({ ...e.message });
        if (e.replyId) this.reply(e.replyId);
        break;
      case 'reply.start': {
        const entry = startedEntry(e.replyId, e.model);
        this.pushHistory(entry);
        this.inflight.set(e.replyId, entry);
        this.reply(e.replyId).start(e.model);
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
        const { finishReason, usage, toolCalls, error } = e;
        this.reply(e.replyId).finish({ finishReason, ...(usage ? { usage } : {}), ...(toolCalls ? { toolCalls } : {}), ...(error ? { error } : {}) });
        break;
      }
    }
    this.publish(e.type, e);
  }

  private acknowledge(e: MessageFrame): void {
    const id = e.message.clientMessageId;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || !id) return;
    this.pending.delete(id);
    p.resolve(e);
  }

  private pushHistory(m: HistoryMessage): void {
    this.historyValue.push(m);
    const over = this.historyValue.length - this.host.historyLimit;
    if (over > 0) this.historyValue.splice(0, over);
  }

  private publish<K extends keyof ConversationEvents>(name: K, frame: ConversationEvents[K] & ConversationUpdate): void {
    this.emit(name, frame);
    for (const it of this.iterators) it.push(frame);
  }
}
