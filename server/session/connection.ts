// One client socket: the hello handshake, parsing and validating every frame
// once at the edge, and handing valid frames to their conversation. Frames of
// one socket are handled one at a time, in the order they arrived.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { closeCodes, type ErrorCode } from '../../shared/codes.js';
import { features } from '../../shared/features.js';
import {
  ClientFrame,
  clientFrameTypes,
  describeIssues,
  PROTOCOL_VERSION,
  type ClientFrameOf,
  type Limits,
  type Role,
  type ServerFrame,
  type ServerFrameOf,
  type User,
} from '../../shared/protocol.js';
import { AuthError, type Authenticator, type Identity } from './auth.js';
import type { JoinFrom, MemberSocket } from '../rooms/conversation.js';
import type { UsageReport } from '../usage/report.js';
import type { Conversations } from '../rooms/conversations.js';
import { serialize } from '../rooms/fanout.js';
import { RelayError } from '../errors.js';
import { TokenBucket } from './limits.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Outbox, type DeltaEvent } from './outbox.js';

export interface ConnectionSettings {
  helloTimeoutMs: number;
  maxConversations: number;
  sendBufferLimitBytes: number;
  highWaterBytes: number;
  frameRatePerSec: number;
  frameBurst: number;
  frameAbuseStrikes: number;
  limits: Limits;
  /** The models a send may ask for, told in `welcome`. */
  models: NonNullable<ServerFrameOf<'welcome'>['models']>;
}

export interface ConnectionDeps {
  conversations: Conversations;
  auth: Authenticator;
  usage: UsageReport;
  settings: ConnectionSettings;
  log: Logger;
  metrics: Metrics;
  onClose(connection: Connection): void;
}

/** Frames waiting to be handled; past this the client is flooding. */
const INBOX_LIMIT = 64;
/** Conversations a `list` answers with when it names no limit. */
const DEFAULT_LIST_LIMIT = 20;
/** Just enough of a broken frame to answer it: its ref, and whether it named a known type. */
const FrameEnvelope = z.object({ type: z.string().optional(), ref: z.string().max(64).optional() });

export class Connection implements MemberSocket {
  readonly id = randomUUID();
  private state: 'hello' | 'open' | 'closed' = 'hello';
  private identity: Identity | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly joined = new Set<string>();
  private readonly helloTimer: NodeJS.Timeout;
  private inbox: Promise<void> = Promise.resolve();
  private inboxSize = 0;
  private missedPongs = 0;
  private log: Logger;
  private readonly outbox: Outbox;
  private readonly frameBucket: TokenBucket;
  /** Refused frames (malformed, or past the frame rate) a client may send before it counts as abuse; refills slowly. */
  private readonly strikes: TokenBucket;

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: ConnectionDeps,
    /** The TCP socket under `ws`, corked while a turn's frames are written. */
    socket?: Socket,
  ) {
    this.log = deps.log.child({ connectionId: this.id });
    const s = deps.settings;
    const metrics = deps.metrics;
    let corked = false;
    const wire = {
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      send(json: string) {
        // Frames produced in one turn of the event loop leave in one write.
        if (!corked && socket) {
          corked = true;
          socket.cork();
          process.nextTick(() => {
            corked = false;
            socket.uncork();
          });
        }
        metrics.countOut(json);
        ws.send(json);
      },
    };
    this.outbox = new Outbox(wire, { highWaterBytes: s.highWaterBytes, hardLimitBytes: s.sendBufferLimitBytes }, {
      overflow: () => this.overflow('send buffer over its hard limit'),
      merged: () => metrics.mergedDeltas.inc(),
    });
    this.frameBucket = new TokenBucket(s.frameBurst, s.frameRatePerSec);
    this.strikes = new TokenBucket(s.frameAbuseStrikes, 1);
    this.helloTimer = setTimeout(() => this.close(closeCodes.helloTimeout, 'no hello in time'), deps.settings.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('pong', () => (this.missedPongs = 0));
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    ws.once('close', (code) => this.closed(code));
  }

  get user(): User {
    if (!this.identity) throw new Error('user read before hello');
    return this.identity.user;
  }

  /** Called by the server's heartbeat: a socket that misses two pings in a row is dead. */
  heartbeat(): void {
    if (this.missedPongs >= 2) {
      this.log.info('missed two pings; terminating');
      this.ws.terminate();
      return;
    }
    this.missedPongs++;
    this.ws.ping();
  }

  send(frame: ServerFrame): void {
    this.sendRaw(serialize(frame));
  }

  sendRaw(json: string, conversationId?: string, delta?: DeltaEvent): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.outbox.send(json, delta, conversationId);
  }

  get backlogged(): boolean {
    return this.outbox.backlogged;
  }

  drained(): Promise<void> {
    return this.outbox.drained();
  }

  /** Events queued here that the client has yet to receive. */
  get lag(): number {
    return this.outbox.lag;
  }

  overflow(reason: string): void {
    this.deps.metrics.slowConsumerCloses.inc();
    this.outbox.close();
    this.log.warn({ reason }, 'slow consumer; closing');
    this.close(closeCodes.slowConsumer, 'slow consumer; reconnect and resume');
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.close(closeCodes.unsupportedData, 'binary frames are not accepted');
    if (!this.frameBucket.take() || this.inboxSize >= INBOX_LIMIT) {
      return this.refuse('rate_limited', 'too many frames; slow down', undefined);
    }
    this.inboxSize++;
    this.inbox = this.inbox
      .then(() => this.handle(data))
      .catch((err: unknown) => {
        this.log.error({ err }, 'frame handler failed');
        this.error('internal', 'unexpected server error', undefined);
      })
      .finally(() => this.inboxSize--);
  }

  private async handle(data: RawData): Promise<void> {
    if (this.state === 'closed') return;
    const text = data.toString();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.countIn('invalid', text.length);
      return this.refuse('bad_frame', 'frame is not valid JSON', undefined);
    }
    const parsed = ClientFrame.safeParse(json);
    this.countIn(parsed.success ? parsed.data.type : 'invalid', text.length);
    if (!parsed.success) {
      const envelope = FrameEnvelope.safeParse(json);
      const ref = envelope.success ? envelope.data.ref : undefined;
      const type = envelope.success ? envelope.data.type : undefined;
      if (this.state === 'hello' && type !== undefined && type !== 'hello' && clientFrameTypes.has(type)) {
        return this.close(closeCodes.unauthorized, 'hello first');
      }
      const what = type !== undefined && !clientFrameTypes.has(type) ? `unknown frame type "${type.slice(0, 32)}"` : describeIssues(parsed.error);
      return this.refuse('bad_frame', what, ref);
    }
    const frame = parsed.data;
    if (this.state === 'hello') {
      if (frame.type !== 'hello') return this.close(closeCodes.unauthorized, 'hello first');
      return this.hello(frame);
    }
    const conversationId = 'conversationId' in frame ? frame.conversationId : undefined;
    try {
      await this.dispatch(frame);
    } catch (err) {
      if (err instanceof RelayError && err.code === 'bad_frame') return this.refuse(err.code, err.message, frame.ref, conversationId);
      if (err instanceof RelayError) return this.error(err.code, err.message, frame.ref, conversationId);
      // A bug or a failing store: this frame fails, the socket and everyone else carry on.
      this.log.error({ err, frameType: frame.type, conversationId }, 'frame handler failed');
      this.error('internal', 'unexpected server error', frame.ref, conversationId);
    }
  }

  /** The identity a token stands for; closes with 4401 (and resolves undefined) when it stands for nobody. */
  private async verify(token: string | undefined): Promise<Identity | undefined> {
    try {
      return await this.deps.auth.authenticate(token);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      this.log.info({ reason: err.message }, 'token refused');
      this.close(closeCodes.unauthorized, err.message);
      return undefined;
    }
  }

  /** Run the session on this identity until its token expires. */
  private adopt(identity: Identity): void {
    this.identity = identity;
    clearTimeout(this.expiryTimer);
    const expiresAt = identity.expiresAt;
    if (expiresAt === undefined) return;
    const arm = () => {
      const left = expiresAt - Date.now();
      if (left <= 0) {
        // No token, no spending: the user's replies stop with the session rather than run on for the grace period.
        for (const id of this.joined) this.deps.conversations.find(id)?.cancelRepliesOf(this.user.id);
        return this.close(closeCodes.unauthorized, 'the token has expired');
      }
      // setTimeout cannot wait longer than 2^31-1 ms; a longer wait is re-armed.
      this.expiryTimer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
    };
    arm();
  }

  private countIn(type: string, bytes: number): void {
    this.deps.metrics.framesIn.inc({ type });
    this.deps.metrics.bytesIn.inc({ type }, bytes);
  }

  private async hello(frame: ClientFrameOf<'hello'>): Promise<void> {
    clearTimeout(this.helloTimer);
    const identity = await this.verify(frame.token);
    const sessionToken = await identity?.issueSessionToken?.();
    if (!identity || this.state !== 'hello') return;
    this.adopt(identity);
    this.state = 'open';
    this.log = this.log.child({ userId: this.user.id });
    this.log.info('session open');
    this.send({
      type: 'welcome',
      ref: frame.ref,
      sessionId: this.id,
      user: this.user,
      protocol: PROTOCOL_VERSION,
      limits: this.deps.settings.limits,
      models: this.deps.settings.models,
      // This server has everything the table names, whatever is configured (an empty models list, no TOOLS_FILE).
      features: Object.keys(features),
      ...(sessionToken ? { sessionToken } : {}),
    });
  }

  private async dispatch(frame: ClientFrame): Promise<void> {
    const { conversations } = this.deps;
    switch (frame.type) {
      case 'hello':
        throw new RelayError('bad_frame', 'the session is already open');
      case 'ping':
        return this.send({ type: 'pong', ref: frame.ref, t: Date.now() });
      case 'auth':
        return this.refresh(frame);
      case 'join':
        return this.join(frame.conversationId, frame.since === undefined ? undefined : { since: frame.since, epoch: frame.epoch }, frame.ref, frame.invite);
      case 'leave':
        this.leave(frame.conversationId);
        return this.send({ type: 'left', conversationId: frame.conversationId, ref: frame.ref });
      case 'send': {
        this.checkText(frame.text);
        if (!this.joined.has(frame.conversationId)) await this.join(frame.conversationId, undefined, frame.ref);
        await conversations.get(frame.conversationId).send(this, frame, { operatorTools: true });
        return;
      }
      case 'cancel':
        return this.memberOf(frame.conversationId).cancelBy(this, frame);
      case 'tool.result':
        await this.memberOf(frame.conversationId).toolResult(this, frame);
        return;
      case 'edit':
        this.checkText(frame.text);
        await this.memberOf(frame.conversationId).edit(this, frame);
        return;
      case 'regenerate':
        await this.memberOf(frame.conversationId).regenerate(this, frame);
        return;
      case 'switch':
        return this.memberOf(frame.conversationId).switchBranch(this, frame);
      case 'configure':
        return this.memberOf(frame.conversationId).configure(this, frame);
      case 'role':
        return this.memberOf(frame.conversationId).setRole(this, frame);
      case 'invite':
        return this.memberOf(frame.conversationId).invite(this, frame);
      case 'remove':
        return this.memberOf(frame.conversationId).removeUser(this, frame);
      case 'list': {
        const page = await conversations.list(this.user.id, frame.before, frame.limit ?? DEFAULT_LIST_LIMIT);
        return this.send({ type: 'conversations', ref: frame.ref, ...page });
      }
      case 'delete':
        if (!this.identity?.allows(frame.conversationId)) throw new RelayError('forbidden', 'the token does not allow this conversation');
        return (conversations.find(frame.conversationId) ?? conversations.get(frame.conversationId)).remove(this);
      case 'typing':
        return this.memberOf(frame.conversationId).typing(this);
      case 'usage':
        return this.send({ type: 'usage', ref: frame.ref, ...(await this.deps.usage.of(this.user.id)) });
    }
  }

  private async refresh(frame: ClientFrameOf<'auth'>): Promise<void> {
    // A session without expiry (anonymous) has nothing to refresh.
    if (this.identity?.expiresAt !== undefined) {
      const identity = await this.verify(frame.token);
      if (!identity) return;
      if (identity.user.id !== this.user.id) return this.close(closeCodes.unauthorized, 'the token is for another user');
      this.adopt(identity);
    }
    this.send({ type: 'authed', ref: frame.ref, expiresAt: this.identity?.expiresAt });
  }

  private async join(conversationId: string, from: JoinFrom | undefined, ref: string | undefined, invite?: string): Promise<void> {
    this.admit(conversationId);
    try {
      await this.deps.conversations.get(conversationId).join(this, from, ref, invite);
    } catch (err) {
      this.joined.delete(conversationId);
      throw err;
    }
  }

  private admit(conversationId: string): void {
    if (this.joined.has(conversationId)) return;
    if (!this.identity?.allows(conversationId)) {
      throw new RelayError('forbidden', 'the token does not allow this conversation');
    }
    if (this.joined.size >= this.deps.settings.maxConversations) {
      throw new RelayError('rate_limited', `at most ${this.deps.settings.maxConversations} conversations per socket`);
    }
    this.joined.add(conversationId);
  }

  private checkText(text: string): void {
    const { maxTextChars } = this.deps.settings.limits;
    if (text.length > maxTextChars) throw new RelayError('bad_frame', `text: longer than maxTextChars (${maxTextChars})`);
  }

  private memberOf(conversationId: string) {
    const conversation = this.deps.conversations.find(conversationId);
    if (!conversation || !this.joined.has(conversationId)) {
      throw new RelayError('not_found', 'not a member of this conversation');
    }
    return conversation;
  }

  roleFor(conversationId: string): Role | undefined {
    return this.identity?.roleFor?.(conversationId);
  }

  dropped(conversationId: string, reason: string): void {
    if (!this.joined.delete(conversationId)) return;
    this.send({ type: 'left', conversationId, reason });
  }

  private leave(conversationId: string): void {
    if (!this.joined.delete(conversationId)) return;
    this.deps.conversations.find(conversationId)?.leave(this);
  }

  /** A refused frame spends one of the socket's strikes; a socket out of strikes is closed instead of answered. */
  private refuse(code: 'bad_frame' | 'rate_limited', message: string, ref: string | undefined, conversationId?: string): void {
    if (!this.strikes.take()) return this.close(closeCodes.rateLimitAbuse, 'too many refused frames');
    this.error(code, message, ref, conversationId);
  }

  private error(code: ErrorCode, message: string, ref: string | undefined, conversationId?: string): void {
    this.send({ type: 'error', code, message, ...(ref !== undefined ? { ref } : {}), ...(conversationId ? { conversationId } : {}) });
  }

  private closed(code: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    clearTimeout(this.expiryTimer);
    this.outbox.close();
    for (const id of [...this.joined]) this.leave(id);
    this.log.debug({ code }, 'socket closed');
    this.deps.onClose(this);
  }
}
