// A socket the test plays the relay on, for client library unit tests: it
// answers hello and join itself; every other server frame is pushed by hand,
// so the test decides the order of everything.
import { ClientFrame, type ServerFrame, type User } from '../shared/protocol.js';
import type { SocketLike } from '../client/index.js';

export const LIMITS = { maxFrameBytes: 65_536, maxConversations: 64, maxActiveReplies: 4, maxQueuedReplies: 4, maxTextChars: 16_000 };
export const ROOM = 'tools';
export const ME: User = { id: 'u', name: 'U' };
type Joined = Extract<ServerFrame, { type: 'joined' }>;
type ResultFrame = Extract<ClientFrame, { type: 'tool.result' }>;

export class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  static models: Array<{ id: string; default?: boolean }> | undefined;
  /** The next join's answer (members and conversationId are filled in). */
  static joined: Partial<Joined> = {};
  readyState = 0;
  readonly sent: ClientFrame[] = [];
  private readonly listeners = new Map<string, Array<(event: unknown) => void>>();

  /** The socket the client opened last. */
  static last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1]!;
  }

  static reset(): void {
    FakeSocket.all = [];
    FakeSocket.models = undefined;
    FakeSocket.joined = {};
  }

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
    queueMicrotask(() => ((this.readyState = 1), this.fire('open', {})));
  }

  send(data: string): void {
    const frame = ClientFrame.parse(JSON.parse(data));
    this.sent.push(frame);
    // Answers come after send() returns, as from a real server.
    if (frame.type === 'hello') {
      this.later({ type: 'welcome', sessionId: 's', user: ME, protocol: 1, limits: LIMITS, ...(FakeSocket.models ? { models: FakeSocket.models } : {}) });
    }
    if (frame.type === 'join') this.later({ type: 'joined', conversationId: ROOM, seq: 0, members: [], history: [], ...FakeSocket.joined });
  }

  close(code = 1000, reason = ''): void {
    this.readyState = 3;
    queueMicrotask(() => this.fire('close', { code, reason }));
  }

  addEventListener(type: string, listener: (event: unknown) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  /** Delivered at once. */
  push(frame: ServerFrame): void {
    this.fire('message', { data: JSON.stringify(frame) });
  }

  /** The tool.result frames this socket carried. */
  results(): ResultFrame[] {
    return this.sent.filter((f): f is ResultFrame => f.type === 'tool.result');
  }

  private later(frame: ServerFrame): void {
    queueMicrotask(() => this.push(frame));
  }

  private fire(type: string, event: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l(event);
  }
}
