// Delivery of a conversation's frames to one member socket, in seq order,
// exactly once: while a member is still being sent its join snapshot or
// replay, live frames wait in a bounded buffer and are flushed after it.
import type { ConversationEvent, ServerFrame } from '../../shared/protocol.js';
import type { Delivery } from './bus.js';
import type { DeltaEvent } from '../session/outbox.js';
import type { StoredEvent } from '../backend/store.js';

/** Serialize a frame the server built itself: typed here, never re-validated on the way out. */
export function serialize(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** What fan-out needs of a connection. */
export interface FrameSink {
  readonly id: string;
  /** `conversationId` keeps a slow socket's held frames in order; `delta` lets it merge them. */
  sendRaw(json: string, conversationId?: string, delta?: DeltaEvent): void;
  /** The member fell too far behind to keep (its buffer overflowed): close it so it resumes. */
  overflow(reason: string): void;
  /** Resolves when the socket has room for a bulk send (a replay) to go on. */
  drained(): Promise<void>;
  readonly backlogged: boolean;
}

/** Live frames a joining member may buffer while its snapshot is being read. */
const PENDING_LIMIT = 10_000;

export class MemberFeed {
  private pending: Delivery[] | undefined = [];
  private lastSeq = -1;

  constructor(
    readonly sink: FrameSink,
    private readonly conversationId: string,
  ) {}

  /** The member got its snapshot or replay: it has been in the conversation. */
  get opened(): boolean {
    return this.pending === undefined;
  }

  /** The seq of the last event this member has been sent. */
  get seen(): number {
    return Math.max(0, this.lastSeq);
  }

  /** The snapshot or replay has been sent up to `seq`: flush what waited, then go live. */
  open(seq: number): void {
    this.lastSeq = Math.max(this.lastSeq, seq);
    const waiting = this.pending ?? [];
    this.pending = undefined;
    for (const d of waiting) this.deliver(d);
  }

  deliver(d: Delivery): void {
    if (this.pending) {
      if (this.pending.length >= PENDING_LIMIT) return this.sink.overflow('join backlog overflow');
      this.pending.push(d);
      return;
    }
    const event = d.event;
    if (event) {
      if (event.seq <= this.lastSeq) return;
      this.lastSeq = event.seq;
    }
    const origin = d.origin;
    if (origin && origin.connectionId === this.sink.id) {
      if (origin.skip) return;
      if (origin.ref !== undefined) return this.sink.sendRaw(withRef(d.json, origin.ref), this.conversationId);
    }
    this.send(d.json, event);
  }

  /** Send one event frame (live, or replayed on join). */
  send(json: string, event: ConversationEvent | undefined): void {
    this.sink.sendRaw(json, this.conversationId, event?.type === 'reply.delta' ? event : undefined);
  }
}

/** Add `ref` to a serialized frame object without parsing it again. */
export function withRef(json: string, ref: string): string {
  return `${json.slice(0, -1)},"ref":${JSON.stringify(ref)}}`;
}

/** Largest text a merged replay delta carries, so no replayed frame grows without bound. */
const REPLAY_MERGE_CHARS = 16 * 1024;

/**
 * A replay with consecutive deltas of one reply merged (same text, the seq of
 * the last): a client resuming after a long reply gets a few frames, not one
 * per token.
 */
export function* coalesceReplay(events: readonly StoredEvent[]): Generator<{ json: string; event: ConversationEvent }> {
  let pending: DeltaEvent | undefined;
  let pendingJson: string | undefined;
  for (const { event, json } of events) {
    const merged = event.type === 'reply.delta' && pending && size(pending) + size(event) <= REPLAY_MERGE_CHARS ? mergeDeltas(pending, event) : undefined;
    if (merged) {
      pending = merged;
      pendingJson = undefined;
      continue;
    }
    if (pending) yield { json: pendingJson ?? serialize(pending), event: pending };
    pending = undefined;
    if (event.type === 'reply.delta') {
      pending = event;
      pendingJson = json;
    } else {
      yield { json, event };
    }
  }
  if (pending) yield { json: pendingJson ?? serialize(pending), event: pending };
}

/** Characters a delta carries. */
export function size(d: DeltaEvent): number {
  return (d.text?.length ?? 0) + (d.reasoning?.length ?? 0) + (d.refusal?.length ?? 0) + (d.toolCall?.arguments?.length ?? 0);
}

/**
 * Two consecutive deltas of a reply as one (the seq of the later), for a
 * reader that is behind; undefined when they must stay two: other replies,
 * or pieces of two different tool calls.
 */
export function mergeDeltas(a: DeltaEvent, b: DeltaEvent): DeltaEvent | undefined {
  if (a.replyId !== b.replyId) return undefined;
  const toolCall = mergeToolCall(a.toolCall, b.toolCall);
  if (toolCall === false) return undefined;
  return {
    ...a,
    seq: b.seq,
    text: join(a.text, b.text),
    reasoning: join(a.reasoning, b.reasoning),
    refusal: join(a.refusal, b.refusal),
    ...(toolCall ? { toolCall } : {}),
  };
}

function mergeToolCall(a: DeltaEvent['toolCall'], b: DeltaEvent['toolCall']): DeltaEvent['toolCall'] | false {
  if (!a || !b) return a ?? b;
  if (a.index !== b.index) return false;
  const args = join(a.arguments, b.arguments);
  return { index: a.index, id: a.id ?? b.id, name: a.name ?? b.name, ...(args ? { arguments: args } : {}) };
}

/** Undefined fields vanish when serialized, so an empty join leaves no empty field. */
export function join(a: string | undefined, b: string | undefined): string | undefined {
  return (a ?? '') + (b ?? '') || undefined;
}
