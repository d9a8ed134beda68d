// The connection to a relay: one socket at a time, the hello handshake,
// app-level pings that notice dead sockets, reconnect with backoff, and resume
// (re-join with since, re-send what was not acknowledged) on every new socket.
import { clientCloseCodes, closeCodes } from '../shared/codes.js';
import type { Attachment, ClientFrame, ConversationSummary, Limits, ServerFrame, ServerFrameOf, User } from '../shared/protocol.js';
import { Backoff } from './backoff.js';
import { Conversation, type ConversationHost } from './conversation.js';
import { Emitter } from './emitter.js';
import type { ClientState, ModelInfo, RelayClientEvents, RelayClientOptions, StateChange, TokenSource, Welcome } from './options.js';
import { SendError } from './errors.js';
import { Pacer } from './pacer.js';
import { Requests, type AnswerType } from './requests.js';
import { decodeFrame, safeClose, type SocketConstructor, type SocketLike } from './socket.js';
import { download, httpOrigin, upload, type UploadOptions } from './uploads.js';

export type { SocketConstructor, SocketLike } from './socket.js';
export type { ClientError, ClientState, ModelInfo, RelayClientEvents, RelayClientOptions, StateChange, TokenSource, Welcome } from './options.js';

/** Close codes of our own (browsers only let clients use 1000 and 3000-4999). */
/** Until a connection has stayed up this long, an overload close keeps the backoff growing. */
const STABLE_MS = 10_000;
/** The server's default per-socket limit; each may hold a bounded number of unacknowledged sends. */
const MAX_CONVERSATIONS = 64;
/** After an unattributable `rate_limited` (a frame was dropped), re-join and re-send after this long. */
const RESYNC_MS = 1_000;

export class RelayClient extends Emitter<RelayClientEvents> {
  private stateValue: ClientState = 'closed';
  private socket: SocketLike | undefined;
  private welcomeValue: Welcome | undefined;
  private readonly conversations = new Map<string, Conversation>();
  private readonly requests = new Requests();
  private readonly pacer: Pacer<ClientFrame>;
  private readonly backoff: Backoff;
  private readonly Ctor: SocketConstructor;
  private token: TokenSource | undefined;
  private refCounter = 0;
  private stopped = true;
  private everOpened = false;
  private lastCloseOverloaded = false;
  private timers: Partial<Record<'retry' | 'pong' | 'stable' | 'handshake' | 'resync', ReturnType<typeof setTimeout>>> = {};
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private waiters: Array<{ resolve: (w: Welcome) => void; reject: (e: Error) => void }> = [];
  private readonly host: ConversationHost;
  private readonly opts: Required<Pick<RelayClientOptions, 'validate' | 'pingIntervalMs' | 'pongTimeoutMs' | 'connectTimeoutMs' | 'historyLimit'>>;

  constructor(private readonly options: RelayClientOptions) {
    super();
    const Ctor = options.WebSocket ?? (globalThis.WebSocket as SocketConstructor | undefined);
    if (!Ctor) throw new TypeError('no WebSocket: pass options.WebSocket (e.g. from the "ws" package)');
    this.Ctor = Ctor;
    this.token = options.token;
    this.backoff = new Backoff(options.backoff);
    this.pacer = new Pacer((frame) => this.socket && this.write(this.socket, frame));
    this.opts = {
      validate: options.validate ?? true,
      pingIntervalMs: options.pingIntervalMs ?? 20_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      historyLimit: options.historyLimit ?? 500,
    };
    const client = this;
    this.host = {
      get isOpen() {
        return client.stateValue === 'open';
      },
      get limits(): Limits | undefined {
        return client.welcomeValue?.limits;
      },
      get userId(): string | undefined {
        return client.welcomeValue?.user.id;
      },
      historyLimit: this.opts.historyLimit,
      nextRef: () => this.nextRef(),
      transmit: (frame) => this.transmit(frame),
      confirm: (frame) => this.confirm(frame),
      request: (frame, type) => this.request(frame, type),
      forget: (c) => {
        if (this.conversations.get(c.id) === c) this.conversations.delete(c.id);
      },
    };
  }

  get state(): ClientState {
    return this.stateValue;
  }
  /** Who the server says we are (with anonymous auth, a new user after every reconnect). */
  get user(): User | undefined {
    return this.welcomeValue?.user;
  }
  get welcome(): Welcome | undefined {
    return this.welcomeValue;
  }
  /** The models a send may ask for (`options.model`), as the last welcome listed them; empty when the server does not say. */
  get models(): readonly ModelInfo[] {
    return this.welcomeValue?.models ?? [];
  }
  /** What the server supports (`welcome.features`: `tools`, `models`, …); empty when it does not say. Unknown names are kept, not errors. */
  get features(): readonly string[] {
    return this.welcomeValue?.features ?? [];
  }

  /** Open the connection; resolves at the first welcome, rejects if the client closes for good first. */
  connect(): Promise<Welcome> {
    if (this.stateValue === 'open' && this.welcomeValue) return Promise.resolve(this.welcomeValue);
    // Closed by a 4401 with a fixed token: the same token would be refused again.
    if (this.stateValue === 'closed' && !this.stopped) return Promise.reject(new SendError('unauthorized: pass a new token to setToken()', 'unauthorized'));
    const waiting = new Promise<Welcome>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.stopped) {
      this.stopped = false;
      this.backoff.reset();
      // A browser that comes back online should not sit out the rest of a long backoff.
      globalThis.addEventListener?.('online', this.retryNow);
      this.openSocket();
    }
    return waiting;
  }

  /** Close for good: no reconnect; unacknowledged sends reject and reply handles finish with an error. */
  close(): void {
    this.stopped = true;
    globalThis.removeEventListener?.('online', this.retryNow);
    this.dropSocket();
    const reason = new SendError('the client was closed', 'closed');
    for (const c of this.conversations.values()) c.dispose(reason);
    this.conversations.clear();
    this.setState('closed', { code: closeCodes.normal, reason: 'client closed' });
    this.settleWaiters(reason);
  }

  /**
   * Upload a file for `send(text, {attachments: [id]})`; resolves with its
   * attachment (id, type checked by the server, size, name). Needs the
   * session open (its credential is the socket's).
   */
  async uploadAttachment(file: Blob, opts: UploadOptions = {}): Promise<Attachment> {
    return upload(httpOrigin(this.options.url), await this.credential(), file, opts);
  }

  /** The bytes of an attachment a message carries (for members of its conversation). */
  async fetchAttachment(id: string): Promise<Blob> {
    return download(httpOrigin(this.options.url), await this.credential(), id);
  }

  /** The session's limits, as the last welcome told them (frame size, text length, attachment size and types, …). */
  get limits(): Limits | undefined {
    return this.welcomeValue?.limits;
  }

  /** In anonymous mode, the token that brings this user back (`welcome.sessionToken`): keep it to stay the same user after a reload. */
  get sessionToken(): string | undefined {
    return this.welcomeValue?.sessionToken;
  }

  /** The token, or in anonymous mode the latest session token (which supersedes a stored one the server no longer knows). */
  private async credential(): Promise<string | undefined> {
    if (this.sessionToken) return this.sessionToken;
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  /** Replace the token; after a 4401 with a fixed token this is what reconnects. */
  setToken(token: TokenSource): void {
    this.token = token;
    if (this.stopped || this.stateValue !== 'closed') return;
    this.backoff.reset();
    this.openSocket();
  }

  /**
   * Hand the open session a fresh token before the current one expires (token
   * mode closes the socket with 4401 at expiry). Without an argument the token
   * option is used (a function is called again). Resolves with the new expiry
   * (ms since the epoch) if the server has one.
   */
  async reauthenticate(token?: string): Promise<number | undefined> {
    if (token !== undefined && typeof this.token !== 'function') this.token = token;
    const fresh = token ?? (typeof this.token === 'function' ? await this.token() : this.token);
    if (!fresh) throw new SendError('no token to send', 'bad_frame');
    const authed = await this.request({ type: 'auth', ref: this.nextRef(), token: fresh }, 'authed');
    return authed.expiresAt;
  }

  /** The user's own usage from the server's ledger: today's totals and the current quota window's. */
  usage(): Promise<ServerFrameOf<'usage'>> {
    return this.request({ type: 'usage', ref: this.nextRef() }, 'usage');
  }

  /**
   * The user's conversations, kept by the server (so every device sees the
   * same list): newest activity first, a page at a time; pass `next` back as
   * `before` for the following page.
   */
  async listConversations(page: { before?: number; limit?: number } = {}): Promise<{ conversations: ConversationSummary[]; next?: number }> {
    const { conversations, next } = await this.request({ type: 'list', ref: this.nextRef(), ...page }, 'conversations');
    return next === undefined ? { conversations } : { conversations, next };
  }

  /** Delete a conversation for everyone (its owner's to do); its members, this client's too, get `left` with reason "deleted". */
  deleteConversation(id: string): Promise<void> {
    return this.confirm({ type: 'delete', conversationId: id, ref: this.nextRef() });
  }

  /**
   * The handle of a conversation, joined now (or as soon as the client is
   * open) and re-joined after every reconnect; `invite`: an invite token
   * (`conversation.createInvite()`), which lets this user into a private one.
   */
  conversation(id: string, options: { invite?: string } = {}): Conversation {
    let c = this.conversations.get(id);
    if (c) return c;
    if (this.conversations.size >= MAX_CONVERSATIONS) throw new RangeError(`at most ${MAX_CONVERSATIONS} conversations`);
    c = new Conversation(id, this.host, options.invite);
    this.conversations.set(id, c);
    if (this.stateValue === 'open') c.resume();
    return c;
  }

  // ------------------------------------------------------------ socket lifecycle

  private openSocket(): void {
    if (this.stateValue !== 'reconnecting') this.setState(this.everOpened ? 'reconnecting' : 'connecting', {});
    let ws: SocketLike;
    try {
      ws = new this.Ctor(this.options.url);
    } catch (err) {
      // A malformed URL throws synchronously in browsers; it will not get better.
      this.stopped = true;
      const e = new SendError(err instanceof Error ? err.message : String(err), 'bad_url');
      this.emit('error', { code: e.code, message: e.message });
      this.setState('closed', {});
      this.settleWaiters(e);
      return;
    }
    this.socket = ws;
    this.timers.handshake = setTimeout(() => this.abandon(ws, clientCloseCodes.handshakeTimeout, 'no welcome in time'), this.opts.connectTimeoutMs);
    ws.addEventListener('open', () => void this.hello(ws));
    ws.addEventListener('message', (ev: { data: unknown }) => {
      if (this.socket === ws) this.receive(ev.data);
    });
    ws.addEventListener('close', (ev: { code: number; reason: string }) => {
      if (this.socket === ws) this.closed(ev.code, ev.reason);
    });
    // An error is always followed by a close; the close decides what happens next.
    ws.addEventListener('error', () => {});
  }

  private async hello(ws: SocketLike): Promise<void> {
    if (this.socket !== ws) return;
    let token: string | undefined;
    try {
      // Anonymous mode: the session token of the last welcome keeps this user across reconnects.
      token = await this.credential();
    } catch (err) {
      this.emit('error', { code: 'token', message: `token provider failed: ${err instanceof Error ? err.message : String(err)}` });
      return this.abandon(ws, clientCloseCodes.tokenFailed, 'token provider failed');
    }
    if (this.socket !== ws) return;
    this.write(ws, { type: 'hello', ref: this.nextRef(), ...(token !== undefined ? { token } : {}) });
  }

  private welcomed(frame: Welcome): void {
    clearTimeout(this.timers.handshake);
    this.welcomeValue = frame;
    this.everOpened = true;
    // After an overload close, a welcome alone does not prove the server recovered.
    if (this.lastCloseOverloaded) this.timers.stable = setTimeout(() => this.backoff.reset(), STABLE_MS);
    else this.backoff.reset();
    this.setState('open', {});
    this.emit('welcome', frame);
    for (const c of this.conversations.values()) c.resume();
    this.startPings();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(frame);
  }

  /** Give up on a socket that may never deliver its close event (dead network), then go on as if it had closed. */
  private abandon(ws: SocketLike, code: number, reason: string): void {
    if (this.socket !== ws) return;
    safeClose(ws, code, reason);
    this.closed(code, reason);
  }

  /** Detach from the current socket and everything that belonged to it. */
  private dropSocket(): void {
    const ws = this.socket;
    this.socket = undefined;
    if (ws && this.stopped) safeClose(ws, closeCodes.normal, 'client closed');
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.timers = {};
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.pacer.clear();
    for (const c of this.conversations.values()) c.suspend();
    this.requests.failAll(new SendError('the connection was lost', 'disconnected'));
  }

  private closed(code: number, reason: string): void {
    this.dropSocket();
    if (this.stopped) return;
    this.lastCloseOverloaded = code === closeCodes.tryAgainLater || code === closeCodes.rateLimitAbuse;
    if (code === closeCodes.unauthorized && typeof this.token !== 'function') {
      // Retrying the same token would only be refused again: wait for setToken().
      this.emit('error', { code: 'unauthorized', message: reason || 'the server refused the token' });
      this.setState('closed', { code, reason });
      this.settleWaiters(new SendError(reason || 'unauthorized', 'unauthorized'));
      return;
    }
    const delayMs = this.backoff.next(this.lastCloseOverloaded ? 0.5 : 0);
    this.everOpened = true; // from here on every attempt is a reconnect
    this.setState('reconnecting', { code, reason, attempt: this.backoff.attempt, delayMs });
    this.timers.retry = setTimeout(() => this.openSocket(), delayMs);
  }

  private readonly retryNow = (): void => {
    if (this.timers.retry === undefined || this.stopped) return;
    clearTimeout(this.timers.retry);
    delete this.timers.retry;
    this.openSocket();
  };

  // ------------------------------------------------------------ frames

  private receive(data: unknown): void {
    // Anything from the server proves the socket alive, not only a pong.
    clearTimeout(this.timers.pong);
    delete this.timers.pong;
    const decoded = decodeFrame(data, this.opts.validate);
    if ('problem' in decoded) return this.emit('error', { code: 'bad_frame', message: decoded.problem });
    // A frame type from a newer server: not for us, and not an error either.
    if ('ignored' in decoded) return;
    this.route(decoded.frame);
  }

  private route(frame: ServerFrame): void {
    switch (frame.type) {
      case 'welcome':
        return this.welcomed(frame);
      case 'pong':
        return this.requests.pong(frame.ref);
      case 'authed':
      case 'usage':
      case 'conversations':
      case 'invited':
        return this.requests.answered(frame);
      case 'error':
        return this.failed(frame);
      case 'tool.result':
      case 'reply.start':
        // The conversation first, so a tool result is on its reply, and a regenerated reply known, by the time the answer resolves.
        this.conversations.get(frame.conversationId)?.receive(frame);
        return this.requests.answered(frame);
      default:
        this.conversations.get(frame.conversationId)?.receive(frame);
    }
  }

  private failed(frame: ServerFrameOf<'error'>): void {
    const { ref, conversationId, code } = frame;
    // What a promise already reports (a send's, a cancel's) is not reported twice.
    if (this.requests.error(frame)) return;
    const conversation = conversationId === undefined ? undefined : this.conversations.get(conversationId);
    if (ref !== undefined) {
      for (const c of conversation ? [conversation] : this.conversations.values()) if (c.rejectSend(ref, frame)) return;
    }
    // Without a ref the server dropped some frame of ours unseen; joins and sends are idempotent, so redo them.
    if (ref === undefined && code === 'rate_limited' && !this.timers.resync) {
      this.timers.resync = setTimeout(() => {
        delete this.timers.resync;
        if (this.stateValue === 'open') for (const c of this.conversations.values()) c.resume();
      }, RESYNC_MS);
    }
    if (conversation) conversation.receive(frame);
    else this.emit('error', { code, message: frame.message, ...(ref !== undefined ? { ref } : {}) });
  }

  // ------------------------------------------------------------ sending

  private nextRef(): string {
    this.refCounter = (this.refCounter + 1) % Number.MAX_SAFE_INTEGER;
    return `r${this.refCounter.toString(36)}`;
  }

  private transmit(frame: ClientFrame): void {
    if (this.stateValue !== 'open' || !this.socket) return;
    // Typing is best-effort: never worth queueing behind (or delaying) real frames.
    if (frame.type === 'typing') return void this.pacer.tryNow(frame);
    if (!this.pacer.push(frame)) this.refuse(frame, 'rate_limited', 'too many frames waiting to be sent');
  }

  private write(ws: SocketLike, frame: ClientFrame): void {
    const json = JSON.stringify(frame);
    const max = this.welcomeValue?.limits.maxFrameBytes;
    // The server would close the socket with 1009, and a resumed send would do it again forever.
    if (max !== undefined && json.length * 3 > max && new TextEncoder().encode(json).length > max) {
      return this.refuse(frame, 'bad_frame', `frame exceeds ${max} bytes`);
    }
    try {
      ws.send(json);
    } catch {
      // Sending on a socket that is closing throws in some implementations; the close event follows.
    }
  }

  /** Fail a frame locally as the server would have, so its promise settles the same way. */
  private refuse(frame: ClientFrame, code: 'bad_frame' | 'rate_limited', message: string): void {
    const conversationId = 'conversationId' in frame ? frame.conversationId : undefined;
    const error: ServerFrameOf<'error'> = { type: 'error', code, message, ...(frame.ref ? { ref: frame.ref } : {}), ...(conversationId ? { conversationId } : {}) };
    queueMicrotask(() => this.failed(error));
  }

  private confirm(frame: ClientFrame & { ref: string }): Promise<void> {
    if (this.stateValue !== 'open') return Promise.reject(new SendError('not connected', 'disconnected'));
    if (this.requests.full) return Promise.reject(new SendError('too many requests in flight', 'rate_limited'));
    const pingRef = this.nextRef();
    const done = this.requests.confirm(frame.ref, pingRef);
    this.transmit(frame);
    this.transmit({ type: 'ping', ref: pingRef });
    return done;
  }

  /** A request answered by a frame of `type` carrying its ref (or an error carrying it). */
  private request<T extends AnswerType>(frame: ClientFrame & { ref: string }, type: T): Promise<ServerFrameOf<T>> {
    if (this.stateValue !== 'open') return Promise.reject(new SendError('not connected', 'disconnected'));
    if (this.requests.full) return Promise.reject(new SendError('too many requests in flight', 'rate_limited'));
    const answered = this.requests.answer(frame.ref, type);
    this.transmit(frame);
    return answered;
  }

  private startPings(): void {
    if (this.opts.pingIntervalMs <= 0) return;
    const ws = this.socket;
    this.pingTimer = setInterval(() => {
      if (!ws || this.socket !== ws) return;
      // Written directly: a liveness probe stuck behind paced frames would misjudge the socket.
      this.write(ws, { type: 'ping' });
      this.timers.pong ??= setTimeout(() => this.abandon(ws, clientCloseCodes.deadSocket, 'no pong in time'), this.opts.pongTimeoutMs);
    }, this.opts.pingIntervalMs);
  }

  // ------------------------------------------------------------ bookkeeping

  private setState(state: ClientState, info: Omit<StateChange, 'state' | 'previous'>): void {
    const previous = this.stateValue;
    // A new wait while already reconnecting is news (attempt, delay); re-entering the same state is not.
    if (previous === state && !(state === 'reconnecting' && info.attempt !== undefined)) return;
    this.stateValue = state;
    const change: StateChange = { state, previous, ...info };
    this.emit('state', change);
    this.emit(state, change);
  }

  private settleWaiters(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }
}
