// Fan-out between whoever produces a conversation's frames and the nodes that
// have members in it. In one process that is a map of local subscribers; the
// Redis bus carries the same messages between nodes.
import type { ConversationEvent } from '../../shared/protocol.js';

/** One frame for every member of a conversation, serialized once. */
export interface Delivery {
  json: string;
  /** Set on conversation events (members skip seqs they already have; slow ones merge deltas). */
  event?: ConversationEvent;
  /** The life of the log the event belongs to (shared stores). */
  epoch?: string;
  /** The connection whose frame caused this one. */
  origin?: {
    connectionId: string;
    /** The origin's copy carries this ref. */
    ref?: string | undefined;
    /** The origin does not get it at all (typing). */
    skip?: boolean;
  };
}

export interface Subscriber {
  deliver(delivery: Delivery): void;
  /** Some node asks whoever runs this reply to stop it. */
  cancel(replyId: string, reason: 'cancel' | 'grace'): void;
  /** The conversation's log was lost (a shared store restarted empty): what members hold no longer counts. */
  lost(): void;
  /** The conversation was deleted (on some node): its members here are no longer members. */
  deleted(): void;
}

export interface Subscription {
  /** Resolves once every message published from now on will arrive. */
  readonly ready: Promise<void>;
  /**
   * Resolves once the event with this seq has been handed to this node's
   * members, so a sender gets its own message before the answers to its next
   * frames. Gives up (resolving) after a bound rather than stall the socket.
   */
  delivered(seq: number): Promise<void>;
  close(): void;
}

export interface Bus {
  /** Frames that are not events (presence, typing): they get no seq and are not retained. */
  publish(conversationId: string, delivery: Delivery): void;
  publishCancel(conversationId: string, replyId: string, reason: 'cancel' | 'grace'): void;
  publishDeleted(conversationId: string): void;
  subscribe(conversationId: string, subscriber: Subscriber): Subscription;
  close(): Promise<void>;
}

export class LocalBus implements Bus {
  private readonly subscribers = new Map<string, Set<Subscriber>>();

  publish(conversationId: string, delivery: Delivery): void {
    for (const s of this.subscribers.get(conversationId) ?? []) s.deliver(delivery);
  }

  publishCancel(conversationId: string, replyId: string, reason: 'cancel' | 'grace'): void {
    for (const s of this.subscribers.get(conversationId) ?? []) s.cancel(replyId, reason);
  }

  publishDeleted(conversationId: string): void {
    for (const s of [...(this.subscribers.get(conversationId) ?? [])]) s.deleted();
  }

  subscribe(conversationId: string, subscriber: Subscriber): Subscription {
    let set = this.subscribers.get(conversationId);
    if (!set) this.subscribers.set(conversationId, (set = new Set()));
    set.add(subscriber);
    return {
      ready: Promise.resolve(),
      // In one process an event reaches its subscribers before append() returns.
      delivered: () => Promise.resolve(),
      close: () => {
        set.delete(subscriber);
        if (set.size === 0 && this.subscribers.get(conversationId) === set) this.subscribers.delete(conversationId);
      },
    };
  }

  async close(): Promise<void> {
    this.subscribers.clear();
  }
}
