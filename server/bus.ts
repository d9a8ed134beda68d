// Fan-out between whoever produces a conversation's frames and the nodes that
// have members in it. In one process that is a map of local subscribers; a
// Redis-backed bus can carry the same Delivery between nodes.

import type { ConversationEvent } from '../shared/protocol.js';

/** One frame for every member of a conversation, serialized once. */
export interface Delivery {
  json: string;
  /** Set on conversation events (members skip seqs they already have; slow ones merge deltas). */
  event?: ConversationEvent;
  /** The connection whose frame caused this one. */
  origin?: {
    connectionId: string;
    /** The origin's copy carries this ref. */
    ref?: string | undefined;
    /** The origin does not get it at all (typing). */
    skip?: boolean;
  };
}

export type Deliver = (delivery: Delivery) => void;

export interface Bus {
  publish(conversationId: string, delivery: Delivery): void;
  /** Returns the unsubscribe function. */
  subscribe(conversationId: string, deliver: Deliver): () => void;
}

export class LocalBus implements Bus {
  private readonly subscribers = new Map<string, Set<Deliver>>();

  publish(conversationId: string, delivery: Delivery): void {
    const set = this.subscribers.get(conversationId);
    if (set) for (const deliver of set) deliver(delivery);
  }

  subscribe(conversationId: string, deliver: Deliver): () => void {
    let set = this.subscribers.get(conversationId);
    if (!set) this.subscribers.set(conversationId, (set = new Set()));
    set.add(deliver);
    return () => {
      set.delete(deliver);
      if (set.size === 0 && this.subscribers.get(conversationId) === set) this.subscribers.delete(conversationId);
    };
  }
}
