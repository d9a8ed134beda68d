// The WebSocket surface the client needs, and the frame decoding at its edge.
import { describeIssues, ServerFrame } from '../shared/protocol.js';

/** The part of the WebSocket API the client uses; both the browser's and the `ws` package's fit it. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any`: the DOM's and ws's event types are unrelated classes; the handlers read only data/code/reason.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;
}
export type SocketConstructor = new (url: string) => SocketLike;

export function safeClose(ws: SocketLike, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closing, or a code this implementation refuses: the socket is being dropped either way.
  }
}

const FRAME_TYPES = new Set<string>(ServerFrame.options.map((o) => o.shape.type.value));

export type Decoded = { frame: ServerFrame } | { problem: string };

/**
 * One incoming WebSocket message as a server frame. With `validate` false only
 * the `type` is checked (trusting the server, to skip schema cost on the hot
 * delta path); otherwise the protocol schema decides.
 */
export function decodeFrame(data: unknown, validate: boolean): Decoded {
  if (typeof data !== 'string') return { problem: 'binary frame from server ignored' };
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { problem: 'frame from server is not JSON' };
  }
  if (!validate) return looksLikeServerFrame(json) ? { frame: json } : { problem: 'frame from server has no known type' };
  const parsed = ServerFrame.safeParse(json);
  // A newer server may add frame types; one we cannot read must not take the connection down.
  return parsed.success ? { frame: parsed.data } : { problem: `frame from server ignored: ${describeIssues(parsed.error)}` };
}

function looksLikeServerFrame(json: unknown): json is ServerFrame {
  if (typeof json !== 'object' || json === null || !('type' in json)) return false;
  return typeof json.type === 'string' && FRAME_TYPES.has(json.type);
}
