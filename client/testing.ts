// Node-only test double for apps built on the client: a `ws`-backed socket
// constructor whose connections a test can drop at chosen moments, the way a
// flaky network would (no close frame; the server sees a dead TCP socket).
import { WebSocket } from 'ws';
import type { SocketConstructor, SocketLike } from './relay-client.js';

export interface SocketControl {
  /** Pass as RelayClientOptions.WebSocket. */
  WebSocket: SocketConstructor;
  /** Every socket created so far, oldest first. */
  readonly sockets: ControlledSocket[];
  /** The newest socket. */
  readonly current: ControlledSocket | undefined;
  /** Destroy the newest socket's TCP connection without a close frame. */
  kill(): void;
  /** Called with each outgoing frame once it is written; the test may kill() there. */
  onSent: ((json: string) => void) | undefined;
  /** Called with each incoming frame before the client sees it; return true to kill the socket instead. */
  dropOnReceive: ((json: string) => boolean) | undefined;
}

export interface ControlledSocket extends SocketLike {
  kill(): void;
}

export function controlledSockets(): SocketControl {
  const sockets: ControlledSocket[] = [];

  class Socket implements ControlledSocket {
    private readonly ws: WebSocket;
    private killed = false;

    constructor(url: string) {
      this.ws = new WebSocket(url);
      sockets.push(this);
    }

    get readyState(): number {
      return this.ws.readyState;
    }

    send(data: string): void {
      this.ws.send(data, () => control.onSent?.(data));
    }

    close(code?: number, reason?: string): void {
      this.ws.close(code, reason);
    }

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void {
      if (type !== 'message') {
        this.ws.addEventListener(type, listener);
        return;
      }
      this.ws.on('message', (data, isBinary) => {
        if (this.killed) return;
        const text = isBinary ? undefined : data.toString();
        if (text !== undefined && control.dropOnReceive?.(text)) return this.kill();
        listener({ data: text ?? data });
      });
    }

    kill(): void {
      this.killed = true;
      this.ws.terminate();
    }
  }

  const control: SocketControl = {
    WebSocket: Socket,
    sockets,
    get current() {
      return sockets[sockets.length - 1];
    },
    kill() {
      sockets[sockets.length - 1]?.kill();
    },
    onSent: undefined,
    dropOnReceive: undefined,
  };
  return control;
}
