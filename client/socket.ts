// The WebSocket surface the client needs, and the frame decoding at its edge.
import { describeIssues, ServerFrame, serverFrameTypes } from '../shared/protocol.js';

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

export type Decoded = { frame: ServerFrame } | { problem: string } | { ignored: string };

/**
 * One incoming WebSocket message as a server frame. A frame of a type this
 * library does not know is `ignored`, not a problem: a newer server adds frame
 * types, and a client that predates them must keep working (unknown fields of
 * known frames are dropped by the schema for the same reason). With `validate`
 * false only the `type` is checked (trusting the server, to skip schema cost on
 * the hot delta path); otherwise the protocol schema decides.
 */
export function decodeFrame(data: unknown, validate: boolean): Decoded {
  if (typeof data !== 'string') return { problem: 'binary frame from server ignored' };
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { problem: 'frame from server is not JSON' };
  }
  if (!hasType(json)) return { problem: 'frame from server has no type' };
  if (!isKnownFrame(json)) return { ignored: json.type };
  if (!validate) return { frame: json };
  const parsed = ServerFrame.safeParse(json);
  return parsed.success ? { frame: parsed.data } : { problem: `frame from server ignored: ${describeIssues(parsed.error)}` };
}

function hasType(json: unknown): json is { type: string } {
  return typeof json === 'object' && json !== null && 'type' in json && typeof json.type === 'string';
}

/** A frame of a type this library knows; unvalidated, the rest is the server's word (`validate: false`). */
function isKnownFrame(json: { type: string }): json is ServerFrame {
  return serverFrameTypes.has(json.type);
}
