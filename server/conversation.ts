// One conversation on this node: its member sockets, the reply running for it
// and the timers that end it. Shared state (seq, history, log, queue) lives in
// the store; frames reach members through the bus.
import { randomUUID } from 'node:crypto';
import type { ClientFrameOf, ServerFrame, User } from '../shared/protocol.js';
import type { Bus, Delivery } from './bus.js';
import { RelayError } from './errors.js';
import { coalesceReplay, MemberFeed, serialize, withRef, type FrameSink } from './fanout.js';
import type { Throttle, UserLimits } from './limits.js';
import type { Logger } from './log.js';
import { runReply, type AbortReason, type ReplyJob, type ReplySettings } from './reply.js';
import type { ConversationStore, EventInput, StoredEvent } from './store.js';
import type { Upstream } from './upstream.js';

/** What a conversation needs of the connection it talks to. */
export interface MemberSocket extends FrameSink {
  readonly user: User;
  send(frame: ServerFrame): void;
}

export interface ConversationDeps {
  store: ConversationStore;
  bus: Bus;
  upstream: Upstream;
  userLimits: UserLimits;
  typingThrottle: Throttle;
  settings: ReplySettings & { graceMs: number; idleMs: number; presenceCoalesceMs: number; allowedModels: string[] };
  log: Logger;
  /** Called once the conversation has been idle, memberless and replyless for idleMs. */
  onIdle(conversation: Conversation): void;
}

interface Member {
  socket: MemberSocket;
  feed: MemberFeed;
}

interface ActiveReply {
  replyId: string;
  controller: AbortController;
}

export class Conversation {
  private readonly members = new Map<string, Member>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;
  private active: ActiveReply | undefined;
  private queued = 0;
  private graceTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  /** Set once evicted or shut down: late socket closes must not arm new timers. */
  private disposed = false;
  /** Serializes state changes that span several store calls (send, cancel). */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    private readonly deps: ConversationDeps,
  ) {
    this.log = deps.log.child({ conversationId: id });
    this.unsubscribe = deps.bus.subscribe(id, (d) => this.fanOut(d));
    this.scheduleIdle();
  }

  private fanOut(d: Delivery): void {
    for (const m of this.members.values()) m.feed.deliver(d);
  }

  private serial(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async emit(event: EventInput, origin?: Delivery['origin']): Promise<StoredEvent> {
    const stored = await this.deps.store.append(this.id, event);
    this.deps.bus.publish(this.id, { json: stored.json, event: stored.event, ...(origin ? { origin } : {}) });
    return stored;
  }

  get memberCount(): number {
    return this.members.size;
  }

  get busy(): boolean {
    return this.active !== undefined || this.queued > 0;
  }

  isMember(socket: MemberSocket): boolean {
    return this.members.has(socket.id);
  }

  /** Subscribe a socket: snapshot (or replay after `since`), then live events, none lost or doubled. */
  async join(socket: MemberSocket, since: number | undefined, ref: string | undefined): Promise<void> {
    if (this.members.has(socket.id)) this.members.delete(socket.id);
    // Live frames from here on wait in the feed until the snapshot is out.
    const feed = new MemberFeed(socket, this.id);
    this.members.set(socket.id, { socket, feed });
    this.clearTimers();
    try {
      await this.sendJoined(socket, feed, since, ref);
    } catch (err) {
      // A member that never got its snapshot must not stay subscribed.
      this.leave(socket);
      throw err;
    }
    this.schedulePresence();
  }

  private async sendJoined(socket: MemberSocket, feed: MemberFeed, since: number | undefined, ref: string | undefined): Promise<void> {
    const store = this.deps.store;
    await store.addMember(this.id, socket.id, socket.user);
    const replay = since === undefined ? undefined : await store.eventsSince(this.id, since);
    const members = await store.members(this.id);
    const snap = replay ? undefined : await store.snapshot(this.id);
    if (this.members.get(socket.id)?.feed !== feed) return; // left (or rejoined) while we read
    if (replay) {
      const head = replay.length ? replay[replay.length - 1]!.event.seq : since!;
      socket.send({ type: 'joined', conversationId: this.id, ref, seq: head, members, history: [] });
      for (const { json, event } of coalesceReplay(replay)) {
        // Pace a long replay to the reader, or it would overflow the socket's send limit.
        if (socket.backlogged) await socket.drained();
        if (this.members.get(socket.id)?.feed !== feed) return;
        feed.send(json, event);
      }
      feed.open(head);
    } else if (snap) {
      socket.send({
        type: 'joined',
        conversationId: this.id,
        ref,
        seq: snap.seq,
        members,
        history: snap.history,
        ...(snap.streaming ? { streaming: snap.streaming } : {}),
        ...(since !== undefined ? { reset: true } : {}),
      });
      feed.open(snap.seq);
    }
  }

  /** Unsubscribe a socket (leave or disconnect). A reply keeps running for the grace period. */
  leave(socket: MemberSocket): boolean {
    if (!this.members.delete(socket.id)) return false;
    void this.deps.store.removeMember(this.id, socket.id);
    this.deps.typingThrottle.forget(`${socket.id}:${this.id}`);
    this.schedulePresence();
    if (this.members.size === 0 && !this.disposed) {
      if (this.busy) this.graceTimer = setTimeout(() => this.abandon(), this.deps.settings.graceMs);
      else this.scheduleIdle();
    }
    return true;
  }

  typing(socket: MemberSocket): void {
    if (!this.deps.typingThrottle.allow(`${socket.id}:${this.id}`)) return;
    const json = serialize({ type: 'typing', conversationId: this.id, user: socket.user });
    this.deps.bus.publish(this.id, { json, origin: { connectionId: socket.id, skip: true } });
  }

  send(socket: MemberSocket, frame: ClientFrameOf<'send'>): Promise<void> {
    return this.serial(async () => {
      const { store, userLimits, settings } = this.deps;
      const user = socket.user;
      if (frame.clientMessageId) {
        const seen = await store.findMessage(this.id, frame.clientMessageId);
        if (seen) {
          socket.sendRaw(frame.ref === undefined ? seen.json : withRef(seen.json, frame.ref));
          return;
        }
      }
      const wantsReply = frame.reply ?? true;
      const messageId = randomUUID();
      const replyId = wantsReply ? randomUUID() : undefined;
      if (replyId) {
        const model = frame.options?.model;
        if (model && model !== settings.defaultModel && !settings.allowedModels.includes(model) && !settings.allowedModels.includes('*')) {
          throw new RelayError('forbidden', `model ${model} is not allowed on this server`);
        }
        userLimits.startReply(user.id);
        const job: ReplyJob = { replyId, inReplyTo: messageId, user, options: frame.options };
        if (this.active) {
          if (!(await store.enqueueReply(this.id, job))) {
            userLimits.endReply(user.id);
            throw new RelayError('busy', 'the reply queue of this conversation is full');
          }
          this.queued++;
        }
      }
      await this.emit(
        {
          type: 'message',
          conversationId: this.id,
          message: {
            id: messageId,
            role: 'user',
            author: user,
            text: frame.text,
            createdAt: Date.now(),
            ...(frame.clientMessageId ? { clientMessageId: frame.clientMessageId } : {}),
          },
          ...(replyId ? { replyId } : {}),
        },
        { connectionId: socket.id, ref: frame.ref },
      );
      if (replyId && !this.active) this.start({ replyId, inReplyTo: messageId, user, options: frame.options });
    });
  }

  /** Cancel the running reply, or the named one (running or queued). */
  cancel(frame: ClientFrameOf<'cancel'>): Promise<void> {
    return this.serial(async () => {
      const { replyId } = frame;
      if (this.active && (replyId === undefined || replyId === this.active.replyId)) {
        this.active.controller.abort('cancel' satisfies AbortReason);
        return;
      }
      const removed = replyId ? await this.deps.store.removeReply(this.id, replyId) : undefined;
      if (!removed) throw new RelayError('not_found', replyId ? `no reply ${replyId} to cancel` : 'no reply is running');
      this.queued--;
      this.deps.userLimits.endReply(removed.user.id);
    });
  }

  /** Stop everything this conversation runs (shutdown, or nobody came back within the grace period). */
  async abandon(reason: AbortReason = 'grace'): Promise<void> {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    for (const job of await this.deps.store.clearReplies(this.id)) this.deps.userLimits.endReply(job.user.id);
    this.queued = 0;
    this.active?.controller.abort(reason);
  }

  private start(job: ReplyJob): void {
    const controller = new AbortController();
    this.active = { replyId: job.replyId, controller };
    const log = this.log.child({ replyId: job.replyId, userId: job.user.id });
    const { upstream, settings, userLimits } = this.deps;
    const meter = (tokens: number) => userLimits.quota.spend(job.user.id, tokens);
    void this.deps.store
      .context(this.id)
      .then((history) => runReply({ upstream, settings, conversationId: this.id, job, history, controller, meter, log }, (e) => this.emit(e)))
      .catch((err: unknown) => log.error({ err }, 'reply runner failed'))
      .finally(() => {
        userLimits.endReply(job.user.id);
        this.active = undefined;
        void this.startNext();
      });
  }

  private async startNext(): Promise<void> {
    const next = await this.deps.store.nextReply(this.id);
    if (next) {
      this.queued--;
      this.start(next);
    } else if (this.members.size === 0) {
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
      this.scheduleIdle();
    }
  }

  private schedulePresence(): void {
    if (this.presenceTimer || this.disposed) return;
    // A burst of joins and leaves gives one presence frame.
    this.presenceTimer = setTimeout(async () => {
      this.presenceTimer = undefined;
      if (this.members.size === 0) return;
      const members = await this.deps.store.members(this.id);
      const json = serialize({ type: 'presence', conversationId: this.id, members });
      this.deps.bus.publish(this.id, { json });
    }, this.deps.settings.presenceCoalesceMs);
  }

  private scheduleIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.disposed) return;
    this.idleTimer = setTimeout(() => {
      if (this.members.size === 0 && !this.busy) this.deps.onIdle(this);
    }, this.deps.settings.idleMs);
  }

  private clearTimers(): void {
    clearTimeout(this.graceTimer);
    clearTimeout(this.idleTimer);
    this.graceTimer = this.idleTimer = undefined;
  }

  /** Release everything this object holds; the store's state is evicted by the caller. */
  dispose(): void {
    this.disposed = true;
    this.clearTimers();
    clearTimeout(this.presenceTimer);
    this.presenceTimer = undefined;
    this.unsubscribe();
  }
}
