// The client's options, states and events: the public shapes apps program against.
import type { ServerFrameOf } from '../shared/protocol.js';
import type { BackoffOptions } from './backoff.js';
import type { SocketConstructor } from './socket.js';

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';
export type Welcome = ServerFrameOf<'welcome'>;
/** A model a send may ask for by `options.model`; `default` marks the one used when a send names none. */
export type ModelInfo = NonNullable<Welcome['models']>[number];
export type TokenSource = string | (() => string | Promise<string>);

export interface RelayClientOptions {
  url: string;
  /** A token, or a function asked again on every connect (so a 4401 can be answered with a fresh one). */
  token?: TokenSource;
  /** Needed where there is no globalThis.WebSocket (Node 20: pass `WebSocket` from the `ws` package). */
  WebSocket?: SocketConstructor;
  /** Check every incoming frame against the protocol schemas (default true). */
  validate?: boolean;
  backoff?: Partial<BackoffOptions>;
  /** App-level ping period once open; 0 turns pings off (default 20 s). */
  pingIntervalMs?: number;
  /** How long a ping may go unanswered (with nothing else received) before the socket counts as dead (default 10 s). */
  pongTimeoutMs?: number;
  /** How long a socket may take from creation to welcome (default 15 s). */
  connectTimeoutMs?: number;
  /** Messages kept per conversation (default 500). */
  historyLimit?: number;
}

export interface StateChange {
  state: ClientState;
  previous: ClientState;
  /** Close code of the socket that went away, when a close caused this. */
  code?: number;
  reason?: string;
  /** For `reconnecting`: the attempt about to be made (1-based) and the wait before it. */
  attempt?: number;
  delayMs?: number;
}

export interface ClientError {
  code: string;
  message: string;
  ref?: string;
}

export interface RelayClientEvents {
  state: StateChange;
  connecting: StateChange;
  open: StateChange;
  reconnecting: StateChange;
  closed: StateChange;
  welcome: Welcome;
  error: ClientError;
}
