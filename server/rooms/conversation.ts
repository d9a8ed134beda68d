// One conversation on this node: its member sockets, the reply this node runs
// for it, and the timers that end things. Shared state (seq, history, log,
// reply lease and queue, members) lives in the store; every frame reaches
// members through the bus (record() is where events go from one to the
// other), so other nodes' members see the same events.
import type { ClientFrameOf, Role, ServerFrame, User } from '../../shared/protocol.js';
import type { Bus, Delivery, Subscription } from './bus.js';
import { RelayError } from '../errors.js';
import { MemberFeed, serialize, type FrameSink } from './fanout.js';
import { sendJoined } from './joining.js';
import { Presence } from './presence.js';
import type { Throttle, UserLimits } from '../session/limits.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { LOST_NODE_MESSAGE, runReply, type AbortReason, type ReplySettings } from '../reply/reply.js';
import { LogLostError, type AttachmentStore, type ClientMessage, type Fence, type LedgerEntry, type ReplyEventInput, type ReplyJob, type Resumable, type Store, type StoredEvent } from '../backend/store.js';
import { billFor, countBill } from '../usage/bill.js';
import { orphanBill } from '../usage/orphan.js';
import type { Upstreams } from '../upstream/router.js';
import { ToolLoop, type Origin, type ToolLoopSettings } from './tool-loop.js';
import type { OperatorTools } from '../tools/operator-tools.js';
import { autoTitle } from './auto-title.js';
import { configure, editMessage, mayCancel, regenerate, setRole, switchBranch } from './branching.js';
import { mustJoin, mustWrite, roleOf, type Who } from './access.js';
import type { RoomHost } from './host.js';
import type { Invites } from './invites.js';
import { offeredTools, submitMessage } from './submit.js';
import type { Moderation } from '../moderation/index.js';

/** What a conversation needs of the connection it talks to. */
export interface MemberSocket extends FrameSink, Who {
  readonly user: User;
  send(frame: ServerFrame): void;
  /** The server ended this membership (`reason`: "deleted"): the socket is told with `left`. */
  dropped(conversationId: string, reason: string): void;
}

export interface ConversationSettings extends ReplySettings {
  graceMs: number;
  idleMs: number;
  presenceCoalesceMs: number;
  tools: ToolLoopSettings;
  /** How often a running reply renews its lease in a shared store (0: no lease to renew). */
  leaseRenewMs: number;
  /** Queued replies outlive this process (a shared or durable store): shutdown leaves them to run elsewhere or after a restart. */
  keepQueueOnShutdown: boolean;
  /** CANCEL_POLICY: who may cancel a reply. */
  cancelPolicy: 'any' | 'asker-or-owner';
  /** AUTO_TITLE: a conversation's first exchange gets a title from the model. */
  autoTitle: boolean;
}

export interface ConversationDeps {
  store: Store;
  attachments: AttachmentStore;
  /** Checks messages and replies, when the operator turned moderation on. */
  moderation: Moderation | undefined;
  bus: Bus;
  upstreams: Upstreams;
  /** Invite tokens: handed out by owners, taken at join. */
  invites: Invites;
  /** The relay's own tools, offered with a /ws member's send. */
  operatorTools: OperatorTools;
  userLimits: UserLimits;
  typingThrottle: Throttle;
  settings: ConversationSettings;
  log: Logger;
  metrics: Metrics;
  /** Called once the conversation has been idle, memberless and replyless here for idleMs. */
  onIdle(conversation: Conversation): void;
}

/** Where a resuming member left off: the last seq it has, in which life of the log. */
export interface JoinFrom {
  since: number;
  epoch?: string | undefined;
}

/** How long an invite token works when its `invite` names no time. */
const INVITE_TTL_MS = 7 * 24 * 3_600_000;

/** Early cancels remembered (most are for replies on other nodes, and never needed here). */
const EARLY_CANCELS_KEPT = 64;

interface Member {
  socket: MemberSocket;
  feed: MemberFeed;
}

interface ActiveReply {
  replyId: string;
  /** Who asked for it, and is billed for it. */
  userId: string;
  controller: AbortController;
  done: Promise<void>;
  /** Its reply.end is written: a cancel now is for what follows it (its tool loop), not for it. */
  ended: boolean;
}

export class Conversation {
  private readonly members = new Map<string, Member>();
  private readonly subscription: Subscription;
  private readonly log: Logger;
  private readonly presence: Presence;
  private readonly tools: ToolLoop;
  private active: ActiveReply | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set once evicted or shut down: late socket closes must not arm new timers, ended replies start no next one. */
  private disposed = false;
  private stopping = false;
  /** seq of the last event this node recorded: a reply is done here once its end has reached the members here. */
  private lastRecorded = 0;
  /** Cancels that came for a reply before it ran here (its lease in transit). */
  private readonly earlyCancels = new Set<string>();
  /** Serializes state changes that span several store calls (send, cancel). */
  private chain: Promise<void> = Promise.resolve();
  /** What the modules that write to the conversation (sending, branches, settings) need of it. */
  private readonly host: RoomHost;
  /** The lease of the reply that ended here last, on its way to the next reply or back to the store. */
  private releasing: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    private readonly deps: ConversationDeps,
  ) {
    this.log = deps.log.child({ conversationId: id });
    const conversation = this;
    this.host = {
      id,
      deps,
      get busy() {
        return conversation.busy;
      },
      start: (job, origin) => this.start(job, undefined, origin),
      settled: async () => {
        // A reply whose end is written no longer counts, once its lease has moved on.
        if (this.active?.ended) await this.active.done;
        await this.releasing;
      },
      announce: (stored, origin) => {
        this.publish(stored, undefined, origin);
        return this.subscription.delivered(stored.event.seq);
      },
    };
    this.presence = new Presence(id, deps.store.members, deps.bus, deps.settings.presenceCoalesceMs, this.log);
    this.subscription = deps.bus.subscribe(id, {
      deliver: (d) => this.fanOut(d),
      cancel: (replyId, reason) => {
        if (this.active?.replyId === replyId) return this.active.controller.abort(reason satisfies AbortReason);
        // The lease may be on its way here (handed over, not started yet): the reply stops as soon as it starts.
        this.earlyCancels.add(replyId);
        if (this.earlyCancels.size > EARLY_CANCELS_KEPT) this.earlyCancels.delete(this.earlyCancels.values().next().value!);
      },
      lost: () => this.lost(),
      deleted: () => this.deletedHere(),
    });
    this.tools = new ToolLoop({
      conversationId: id,
      store: deps.store,
      settings: deps.settings.tools,
      operatorTools: deps.operatorTools,
      log: this.log,
      accepted: async (stored, job, start, origin) => {
        this.deps.bus.publish(this.id, origin ? { ...stored, origin } : stored);
        if (job && start) this.start(job);
      },
      reserve: (userId) => deps.userLimits.startReply(userId),
      release: (userId) => deps.userLimits.endReply(userId),
      serial: (task) => this.serial(task),
    });
    this.scheduleIdle();
  }

  private fanOut(d: Delivery): void {
    for (const m of this.members.values()) m.feed.deliver(d);
    if (d.event?.type === 'role' && d.event.role === 'removed') this.dropUser(d.event.userId);
  }

  /** A user taken out: their sockets here stop being members, and are told. */
  private dropUser(userId: string): void {
    for (const { socket } of [...this.members.values()]) {
      if (socket.user.id !== userId) continue;
      this.leave(socket);
      socket.dropped(this.id, 'removed');
    }
  }

  /**
   * The one way an event reaches members: the store gives it its seq and
   * retains it, then the bus carries it to every node. Synchronous when the
   * store is (in memory), so the per-token path takes no promise there.
   */
  private record(event: ReplyEventInput, fence?: Fence, bill?: LedgerEntry, origin?: Origin): void | Promise<void> {
    const stored = this.deps.store.log.append(this.id, event, fence, bill);
    if (!(stored instanceof Promise)) return this.publish(stored, bill, origin);
    return stored.then(
      (s) => (s ? this.publish(s, bill, origin) : undefined),
      (err: unknown) => this.endInLostLog(err, event, bill),
    );
  }

  /**
   * A reply whose log was lost under it still ends for everyone: its reply.end
   * opens the new log, unfenced (there is no lease left to check), and reaches
   * every member after they have started over.
   */
  private async endInLostLog(err: unknown, event: ReplyEventInput, bill: LedgerEntry | undefined): Promise<void> {
    if (!(err instanceof LogLostError) || event.type !== 'reply.end') throw err;
    const stored = await this.deps.store.log.append(this.id, event, undefined, bill);
    if (stored) this.publish(stored, bill);
  }

  /** The log was lost: every member here starts over from the new one (joined with reset). */
  private lost(): void {
    for (const { socket } of [...this.members.values()]) {
      const feed = new MemberFeed(socket, this.id);
      this.members.set(socket.id, { socket, feed });
      this.sendJoined(socket, feed, { since: 0 }, undefined, true).catch((err: unknown) => this.log.warn({ err }, 'restarting a member failed'));
    }
  }

  /** A written event goes to every node (`origin`: the member it answers gets it with its ref); a written bill counts in the metrics. */
  private publish(stored: StoredEvent, bill?: LedgerEntry, origin?: Origin): void {
    if (bill) countBill(this.deps.metrics, bill);
    this.lastRecorded = stored.event.seq;
    this.deps.bus.publish(this.id, origin ? { ...stored, origin } : stored);
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** A reply runs here right now. */
  get busy(): boolean {
    return this.active !== undefined;
  }

  /** Resolves when the reply running here (if any) has written its reply.end. */
  get idle(): Promise<void> {
    return this.active?.done ?? Promise.resolve();
  }

  /** Subscribe a socket: snapshot (or replay after `from`), then live events, none lost or doubled. */
  async join(socket: MemberSocket, from: JoinFrom | undefined, ref: string | undefined, invite?: string): Promise<void> {
    this.members.delete(socket.id);
    // Live frames from here on wait in the feed until the snapshot is out. A member at once, before
    // anything is awaited: a socket that goes meanwhile is taken out again by its leave.
    const feed = new MemberFeed(socket, this.id);
    this.members.set(socket.id, { socket, feed });
    this.clearTimers();
    try {
      if (await this.deps.store.isDeleted(this.id)) throw new RelayError('not_found', 'this conversation was deleted');
      const role = mustJoin((await this.roleOf(socket)) ?? (invite ? await this.admitInvited(socket, invite) : undefined));
      await this.subscription.ready;
      await this.sendJoined(socket, feed, from, ref, false, role);
    } catch (err) {
      // A member that never got its snapshot must not stay subscribed.
      this.leave(socket);
      throw err;
    }
    this.presence.schedule();
    this.visited(socket.user, feed);
  }

  /** The conversation is on the user's list, seen as far as this member has been sent. */
  private visited(user: User, feed: MemberFeed): void {
    void this.deps.store.lists.visit(user.id, this.id, feed.seen).catch((err: unknown) => this.log.warn({ err }, 'updating the conversation list failed'));
  }

  /** `restart`: the server starts the member over (the log was lost), replaying the new log from `from`. */
  private sendJoined(socket: MemberSocket, feed: MemberFeed, from: JoinFrom | undefined, ref: string | undefined, restart = false, role?: Role): Promise<void> {
    const isCurrent = () => this.members.get(socket.id)?.feed === feed;
    const isMember = () => this.members.has(socket.id);
    return sendJoined({ conversationId: this.id, store: this.deps.store, metrics: this.deps.metrics, isCurrent, isMember }, socket, feed, { from, ref, restart, role });
  }

  /** Unsubscribe a socket (leave or disconnect). A reply keeps running for the grace period. */
  leave(socket: MemberSocket): boolean {
    const member = this.members.get(socket.id);
    if (!member || !this.members.delete(socket.id)) return false;
    // Only a member that got in: a join refused (or left before its snapshot) lists nothing.
    if (!this.disposed && member.feed.opened) this.visited(socket.user, member.feed);
    void this.deps.store.members.remove(this.id, socket.id).catch((err: unknown) => this.log.warn({ err }, 'removeMember failed'));
    this.deps.typingThrottle.forget(`${socket.id}:${this.id}`);
    this.presence.schedule();
    if (this.members.size === 0 && !this.disposed) void this.releaseIfIdle();
    return true;
  }

  /**
   * With no member here, this object is released at once unless a reply runs
   * or waits (here or, in a cluster, on another node): then the grace period
   * decides. So a socket that joins and leaves many rooms leaves nothing
   * behind; the store keeps the conversation's content by its own rules.
   */
  private async releaseIfIdle(): Promise<void> {
    if (!this.busy) {
      const { running, queued } = await this.deps.store.replies.state(this.id).catch(() => ({ running: 'unknown', queued: 0 }));
      if (this.members.size > 0 || this.disposed || this.busy) return;
      if (!running && queued === 0) return this.deps.onIdle(this);
    }
    this.graceTimer ??= setTimeout(() => void this.graceExpired(), this.deps.settings.graceMs);
  }

  /** Nobody came back (here or on any node): stop what still runs for the conversation. */
  private async graceExpired(): Promise<void> {
    this.graceTimer = undefined;
    const { store, bus } = this.deps;
    try {
      if (this.members.size > 0 || (await store.members.list(this.id)).length > 0) return;
      const { running } = await store.replies.state(this.id);
      await this.dropQueue();
      if (!running) return;
      if (this.active?.replyId === running) this.active.controller.abort('grace' satisfies AbortReason);
      else bus.publishCancel(this.id, running, 'grace');
    } catch (err) {
      this.log.warn({ err }, 'grace period check failed');
    }
  }

  /** The user's session ended for want of a valid token: their reply running here stops now, unbilled from here on. */
  cancelRepliesOf(userId: string): void {
    if (this.active?.userId === userId) this.active.controller.abort('cancel' satisfies AbortReason);
  }

  typing(socket: MemberSocket): void {
    if (!this.deps.typingThrottle.allow(`${socket.id}:${this.id}`)) return;
    const json = serialize({ type: 'typing', conversationId: this.id, user: socket.user });
    this.deps.bus.publish(this.id, { json, origin: { connectionId: socket.id, skip: true } });
  }

  /**
   * `extra.context`: what the reply answers instead of the history, when the
   * client brings its own (the OpenAI HTTP API); `extra.keyId`: the API key its
   * usage is counted under, however the reply ends. Resolves with the id of the
   * reply it asked for, if any.
   */
  send(socket: MemberSocket, frame: ClientFrameOf<'send'>, extra: { context?: ClientMessage[]; keyId?: string; operatorTools?: boolean } = {}): Promise<string | undefined> {
    return this.serial(async () => {
      const tools = offeredTools(this.host, frame.tools, extra.operatorTools === true);
      const meta = await this.deps.store.log.meta(this.id);
      mustWrite(roleOf(socket, this.id, meta));
      return submitMessage(this.host, socket, frame, { tools, settings: meta.settings, ...extra });
    });
  }

  /** A new version of a user message beside it, answered like a send; the earlier one stays a branch. */
  edit(socket: MemberSocket, frame: ClientFrameOf<'edit'>): Promise<string | undefined> {
    return this.serial(() => editMessage(this.host, socket, frame));
  }

  /** Answer a user message again: a new reply beside the earlier ones, which stay branches. */
  regenerate(socket: MemberSocket, frame: ClientFrameOf<'regenerate'>): Promise<string> {
    return this.serial(() => regenerate(this.host, socket, frame));
  }

  /** Move the active path, for every member, to the branch through a message. */
  switchBranch(socket: MemberSocket, frame: ClientFrameOf<'switch'>): Promise<void> {
    return this.serial(() => switchBranch(this.host, socket, frame));
  }

  /** The conversation's own title, system prompt, model and options, for its next replies. */
  configure(socket: MemberSocket, frame: ClientFrameOf<'configure'>): Promise<void> {
    return this.serial(() => configure(this.host, socket, frame));
  }

  /**
   * Delete the conversation for everyone (its owner's to do): what runs or
   * waits stops (the upstream request is aborted), then everything of it goes
   * from the store, and every member, on every node, gets `left`.
   */
  remove(socket: MemberSocket): Promise<void> {
    return this.serial(async () => {
      // Deleting takes an owner: a conversation from before owners cannot be deleted by any member.
      if ((await this.roleOf(socket)) !== 'owner') throw new RelayError('forbidden', "only the conversation's owner may delete it");
      await this.deleteNow();
    });
  }

  /** Delete the conversation for everyone on the operator's word (a data-protection erase). */
  destroy(): Promise<void> {
    return this.serial(() => this.deleteNow());
  }

  private async deleteNow(): Promise<void> {
    const { store, bus } = this.deps;
    await this.dropQueue();
    const active = this.active;
    if (active) {
      active.controller.abort('cancel' satisfies AbortReason);
      await active.done;
    } else {
      const { running } = await store.replies.state(this.id);
      if (running) bus.publishCancel(this.id, running, 'cancel');
    }
    await store.deleteConversation(this.id);
    bus.publishDeleted(this.id);
  }

  /** Deleted (here or on another node): every member here is told, and this object goes. */
  private deletedHere(): void {
    this.active?.controller.abort('cancel' satisfies AbortReason);
    const sockets = [...this.members.values()].map((m) => m.socket);
    this.members.clear();
    for (const socket of sockets) socket.dropped(this.id, 'deleted');
    this.deps.onIdle(this);
  }

  /**
   * A member's result for a tool call: recorded for every member, and the loop
   * goes on once every call is answered. Resolves with the id of the
   * continuation this result queued, if it did.
   */
  toolResult(socket: MemberSocket, frame: ClientFrameOf<'tool.result'>): Promise<string | undefined> {
    return this.serial(async () => {
      mustWrite(await this.roleOf(socket));
      const { first, continuation } = await this.tools.answer(socket.user, frame, { connectionId: socket.id, ref: frame.ref });
      // The sender's answers to its next frames must not overtake its own result.
      await this.subscription.delivered(first.event.seq);
      return continuation;
    });
  }

  /** The calls of a reply still waiting for results (a client that sends every result again each time, as AG-UI does, sends only these). */
  openToolCalls(replyId: string): Promise<Set<string> | undefined> {
    return this.tools.open(replyId);
  }

  /**
   * A member's cancel (not a viewer's), under the operator's CANCEL_POLICY:
   * with `asker-or-owner`, only who asked for the reply or the owner may.
   */
  async cancelBy(socket: MemberSocket, frame: ClientFrameOf<'cancel'>): Promise<void> {
    if (this.deps.settings.cancelPolicy === 'any') {
      mustWrite(await this.roleOf(socket));
      return this.cancel(frame);
    }
    const judged = await mayCancel(this.host, socket, frame.replyId, this.active);
    return this.cancel(judged === undefined ? frame : { ...frame, replyId: judged });
  }

  /** What this member may do here. */
  private async roleOf(socket: MemberSocket): Promise<Role | undefined> {
    return roleOf(socket, this.id, await this.deps.store.log.meta(this.id));
  }

  /**
   * An invite for a user who has no role here yet: its role is given to them
   * (by who handed it out), as if the owner had. A user taken out stays out.
   */
  private admitInvited(socket: MemberSocket, token: string): Promise<Role | undefined> {
    return this.serial(async () => {
      const invite = await this.deps.invites.verify(token, this.id);
      if (!invite) throw new RelayError('forbidden', 'the invite is not valid for this conversation (expired, or forged)');
      const meta = await this.deps.store.log.meta(this.id);
      // An invite is only as good as its maker: one who is no longer an owner here invites nobody.
      if (roleOf({ user: invite.by }, this.id, meta) !== 'owner') throw new RelayError('forbidden', 'whoever made this invite may no longer invite');
      if (meta.roles[socket.user.id] === 'removed') return undefined;
      const stored = await this.deps.store.log.change(this.id, { type: 'role', userId: socket.user.id, role: invite.role, author: invite.by });
      this.publish(stored);
      return invite.role;
    });
  }

  /** An invite token to hand out (the owner's to do). */
  invite(socket: MemberSocket, frame: ClientFrameOf<'invite'>): Promise<void> {
    return this.serial(async () => {
      if ((await this.roleOf(socket)) !== 'owner') throw new RelayError('forbidden', "only the conversation's owner may invite");
      const role = frame.role ?? 'member';
      const { token, expiresAt } = await this.deps.invites.issue(this.id, role, socket.user, frame.ttlMs ?? INVITE_TTL_MS);
      socket.send({ type: 'invited', ref: frame.ref, conversationId: this.id, token, role, expiresAt });
    });
  }

  /** Give a user a role (the owner's to do); in a private conversation that is the invitation. */
  setRole(socket: MemberSocket, frame: ClientFrameOf<'role'>): Promise<void> {
    return this.serial(() => setRole(this.host, socket, frame.ref, frame.userId, frame.role));
  }

  /** Take a user out (the owner's to do): their sockets, on every node, get `left`, and they may not come back. */
  removeUser(socket: MemberSocket, frame: ClientFrameOf<'remove'>): Promise<void> {
    return this.serial(() => setRole(this.host, socket, frame.ref, frame.userId, 'removed'));
  }

  /** Cancel the running reply, or the named one (running here or on another node, or queued), or a tool loop waiting for results. */
  cancel(frame: ClientFrameOf<'cancel'>): Promise<void> {
    return this.serial(async () => {
      const { replyId } = frame;
      const { store, userLimits, bus } = this.deps;
      const streaming = this.active?.ended === false ? this.active : undefined;
      if (streaming && (replyId === undefined || replyId === streaming.replyId)) {
        streaming.controller.abort('cancel' satisfies AbortReason);
        return;
      }
      const removed = replyId ? await store.replies.removeQueued(this.id, replyId) : undefined;
      if (removed) {
        await userLimits.endReply(removed.user.id);
        return this.endQueued(removed);
      }
      const { running } = await store.replies.state(this.id);
      // A lease still held by the reply that just ended here is not another node's reply.
      const elsewhere = running !== undefined && running !== this.active?.replyId;
      if (elsewhere && (replyId === undefined || replyId === running)) return bus.publishCancel(this.id, running, 'cancel');
      if (await this.tools.cancel(replyId)) return;
      throw new RelayError('not_found', replyId ? `no reply ${replyId} to cancel` : 'no reply is running');
    });
  }

  /**
   * Server shutdown: end the reply running here (it still gets its reply.end)
   * and start no other. Alone (no shared store), also end the queued ones:
   * nobody else will run them. In a cluster they wait for a live node.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.active?.controller.abort('shutdown' satisfies AbortReason);
    if (!this.deps.settings.keepQueueOnShutdown) await this.dropQueue();
  }

  /** Every queued reply ends (cancelled) without having started. */
  private async dropQueue(): Promise<void> {
    const { store, userLimits } = this.deps;
    for (const job of await store.replies.clearQueue(this.id)) {
      await userLimits.endReply(job.user.id);
      await this.endQueued(job);
    }
  }

  /** Tell every member that a queued reply will never run: its reply.end (cancelled), with no reply.start before it. */
  private endQueued(job: ReplyJob): void | Promise<void> {
    const model = job.options?.model ?? this.deps.upstreams.defaultModel;
    const bill = billFor(this.deps.upstreams, { conversationId: this.id, replyId: job.replyId, userId: job.user.id, keyId: job.keyId, model }, { finishReason: 'cancelled' });
    return this.record({ type: 'reply.end', conversationId: this.id, replyId: job.replyId, finishReason: 'cancelled' }, undefined, bill);
  }

  /**
   * A shared store, now and then: if the node that held this conversation's
   * lease is gone, take its queue over; if members vanished with a dead node,
   * say so.
   */
  async checkCluster(): Promise<void> {
    if (this.stopping || this.disposed) return;
    if (!this.active) await this.adopt();
    if (this.members.size > 0) await this.presence.recheck();
  }

  /**
   * A reply whose node is gone (this node now holds its lease) goes on here
   * when its background response can be re-attached to; otherwise it ends for
   * everyone, and the queue moves on here.
   */
  private async adopt(): Promise<void> {
    const { replies } = this.deps.store;
    const adopted = await replies.adopt(this.id);
    if (!adopted) return;
    if ('job' in adopted) return this.start(adopted.job);
    const { orphan: replyId, asked, resumable } = adopted;
    if (asked && resumable && this.runsInBackground(asked)) {
      this.log.warn({ replyId }, 'the node running this reply was lost; re-attaching to its upstream response');
      return this.start(asked, resumable);
    }
    this.log.warn({ replyId }, 'the node running this reply was lost; ending it');
    const error = { code: 'internal' as const, message: LOST_NODE_MESSAGE };
    try {
      const bill = await orphanBill(this.deps, this.id, replyId, error, adopted.asked);
      // Any ordinal the lost node may have written is below this one.
      await this.record({ type: 'reply.end', conversationId: this.id, replyId, finishReason: 'error', error }, { ordinal: Number.MAX_SAFE_INTEGER }, bill);
    } finally {
      // Written or not, the lease moves on: a reply nobody can end must not hold the conversation.
      const next = await replies.next(this.id, replyId);
      if (next) this.start(next);
    }
  }

  private runsInBackground(job: ReplyJob): boolean {
    const model = job.options?.model ?? this.deps.upstreams.defaultModel;
    return this.deps.upstreams.allows(model) && this.deps.upstreams.runsInBackground(model);
  }

  /**
   * Run a reply here: a new one, or (`resume`) one adopted from a lost node,
   * re-attached where it stood. `origin`: the member whose request started it
   * gets its reply.start with the request's ref.
   */
  private start(job: ReplyJob, resume?: Resumable, origin?: Origin): void {
    const controller = new AbortController();
    const log = this.log.child({ replyId: job.replyId, userId: job.user.id });
    const { upstreams, settings, userLimits, store, metrics } = this.deps;
    const meter = (tokens: number) => userLimits.spend(job.user.id, tokens);
    const renew = settings.leaseRenewMs
      ? setInterval(() => void store.replies.renew(this.id, job.replyId).catch((err: unknown) => log.warn({ err }, 'lease renewal failed')), settings.leaseRenewMs)
      : undefined;
    const history = () => store.log.context(this.id);
    const active: ActiveReply = { replyId: job.replyId, userId: job.user.id, controller, ended: false, done: Promise.resolve() };
    if (this.earlyCancels.delete(job.replyId)) controller.abort('cancel' satisfies AbortReason);
    active.done = runReply({ upstreams, settings, conversationId: this.id, job, history, readAttachment: (id) => this.deps.attachments.data(id), moderation: this.deps.moderation, resume, controller, meter, log, metrics }, (e, fence, bill) => this.record(e, fence, bill, e.type === 'reply.start' ? origin : undefined))
      .then(async ({ usage, toolCalls, finishReason }) => {
        active.ended = true;
        this.tools.ended(job.replyId, toolCalls);
        if (settings.autoTitle && finishReason === 'stop' && !job.step && !job.context) this.nameOnce(job);
        if (job.keyId) await store.apiKeys.addUsage(job.keyId, usage);
      })
      // Through another node's bus (Redis) the end comes back later: members here get it before the reply counts as done.
      .then(() => this.subscription.delivered(this.lastRecorded))
      .catch((err: unknown) => log.error({ err }, 'reply runner failed'))
      .then(() => userLimits.endReply(job.user.id))
      .catch((err: unknown) => log.warn({ err }, 'releasing the reply slot failed'))
      .finally(() => {
        clearInterval(renew);
        this.active = undefined;
        this.releasing = this.startNext(job.replyId);
      });
    this.active = active;
  }

  /** AUTO_TITLE: the first exchange names the conversation (in the background: the next reply does not wait). */
  private nameOnce(job: ReplyJob): void {
    const model = job.options?.model ?? this.deps.upstreams.defaultModel;
    autoTitle({ store: this.deps.store, upstreams: this.deps.upstreams, log: this.log }, this.id, model)
      .then((stored) => stored && this.publish(stored))
      .catch((err: unknown) => this.log.warn({ err }, 'naming the conversation failed'));
  }

  private async startNext(ended: string): Promise<void> {
    // A stopping node leaves its queue to the others: the lease lapses and a live node adopts it.
    if (this.stopping) return;
    try {
      const next = await this.deps.store.replies.next(this.id, ended);
      if (next) return this.start(next);
    } catch (err) {
      this.log.error({ err }, 'could not take the next reply');
    }
    if (this.members.size === 0) void this.releaseIfIdle();
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
    this.presence.dispose();
    this.tools.dispose();
    this.subscription.close();
  }
}
