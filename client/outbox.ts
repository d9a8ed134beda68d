// The sends of one conversation that the server has not acknowledged yet.
// Each goes out again on every new socket (and after a resync); the server
// answers a repeat with the original message, so nothing is appended twice.
import type { ClientFrame, ClientFrameOf, ServerFrameOf } from '../shared/protocol.js';
import { SendError } from './errors.js';

type MessageFrame = ServerFrameOf<'message'>;
/** A send, or an edit (a new version of a message): both are acknowledged by their `message`. */
type SendFrame = ClientFrameOf<'send' | 'edit'> & { clientMessageId: string };

interface PendingSend {
  frame: SendFrame;
  /** Refs it went out with on the current socket (an error answers one of them). */
  refs: string[];
  resolve: (m: MessageFrame) => void;
  reject: (e: Error) => void;
}

/** What the outbox needs of the socket's owner. */
export interface OutboxLink {
  readonly isOpen: boolean;
  nextRef(): string;
  transmit(frame: ClientFrame): void;
}

/** Unacknowledged sends one conversation may hold; past it send() rejects at once. */
const MAX_PENDING_SENDS = 16;

export class Outbox {
  private readonly pending = new Map<string, PendingSend>();

  constructor(private readonly link: OutboxLink) {}

  get size(): number {
    return this.pending.size;
  }

  /** Resolves with the acknowledging `message`; a clientMessageId already waiting shares its answer. */
  add(frame: SendFrame): Promise<MessageFrame> {
    if (this.pending.size >= MAX_PENDING_SENDS) {
      return Promise.reject(new SendError(`more than ${MAX_PENDING_SENDS} sends waiting for acknowledgement`, 'rate_limited'));
    }
    const existing = this.pending.get(frame.clientMessageId);
    if (existing) return new Promise((resolve, reject) => chain(existing, resolve, reject));
    return new Promise((resolve, reject) => {
      const p: PendingSend = { frame, refs: [], resolve, reject };
      this.pending.set(frame.clientMessageId, p);
      if (this.link.isOpen) this.transmit(p);
    });
  }

  /** A new socket is open: everything unacknowledged goes out again. */
  resend(): void {
    for (const p of this.pending.values()) this.transmit(p);
  }

  /** The socket went away: its refs will never be answered. */
  suspend(): void {
    for (const p of this.pending.values()) p.refs = [];
  }

  rejectAll(reason: Error): void {
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
  }

  acknowledge(e: MessageFrame): void {
    const id = e.message.clientMessageId;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    p.resolve(e);
  }

  /** An error answering `ref`: true if it was one of ours. */
  reject(ref: string, error: ServerFrameOf<'error'>): boolean {
    for (const [id, p] of this.pending) {
      if (!p.refs.includes(ref)) continue;
      this.pending.delete(id);
      p.reject(new SendError(error.message, error.code));
      return true;
    }
    return false;
  }

  private transmit(p: PendingSend): void {
    const ref = this.link.nextRef();
    // Bounded: a send goes out once per socket, plus once per resync after dropped frames.
    if (p.refs.push(ref) > 8) p.refs.shift();
    this.link.transmit({ ...p.frame, ref });
  }
}

function chain(p: PendingSend, resolve: (m: MessageFrame) => void, reject: (e: Error) => void): void {
  const { resolve: r0, reject: j0 } = p;
  p.resolve = (m) => (r0(m), resolve(m));
  p.reject = (e) => (j0(e), reject(e));
}
