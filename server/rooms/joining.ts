// What a member is sent when it joins: a snapshot, or the retained events after
// where it left off (paced to its reading), and from then on live events,
// none lost or doubled (its MemberFeed holds live frames until this is out).
import type { Role } from '../../shared/protocol.js';
import type { Store } from '../backend/store.js';
import type { Metrics } from '../metrics.js';
import type { JoinFrom, MemberSocket } from './conversation.js';
import { coalesceReplay, type MemberFeed } from './fanout.js';
import { withoutRedacted } from '../history/fold.js';

export interface JoinContext {
  conversationId: string;
  store: Store;
  metrics: Metrics;
  /** Still the same membership (not left or joined again while the store was read)? */
  isCurrent(): boolean;
  /** A member at all (it may have joined again)? */
  isMember(): boolean;
}

export interface JoinRequest {
  from: JoinFrom | undefined;
  ref: string | undefined;
  /** The server starts the member over (the log was lost): a reset, then the new log from `from`. */
  restart: boolean;
  /** What the member may do here, told in `joined`. */
  role?: Role | undefined;
}

export async function sendJoined(ctx: JoinContext, socket: MemberSocket, feed: MemberFeed, { from, ref, restart, role }: JoinRequest): Promise<void> {
  const { conversationId, store } = ctx;
  // A member that left while the subscription got ready must not be listed by the store.
  if (!ctx.isCurrent()) return;
  await store.members.add(conversationId, socket.id, socket.user);
  const replay = from ? await store.log.eventsSince(conversationId, from.since, from.epoch) : undefined;
  const snap = replay ? undefined : await store.log.snapshot(conversationId);
  const members = await store.members.list(conversationId);
  if (!ctx.isCurrent()) {
    // Left while we read: its leave may have run before the add above.
    if (!ctx.isMember()) await store.members.remove(conversationId, socket.id);
    return;
  }
  if (from && !restart) ctx.metrics.resumes.inc({ outcome: replay ? 'replayed' : 'reset' });
  const reset = restart || (from !== undefined && !replay);
  if (snap) {
    socket.send({
      type: 'joined',
      conversationId,
      ref,
      seq: snap.seq,
      members,
      history: snap.history,
      ...(snap.streaming ? { streaming: snap.streaming } : {}),
      ...(snap.settings ? { settings: snap.settings } : {}),
      ...(snap.owner ? { owner: snap.owner } : {}),
      ...(role ? { role } : {}),
      ...(reset ? { reset: true } : {}),
      ...(snap.epoch ? { epoch: snap.epoch } : {}),
    });
    feed.open(snap.seq);
    return;
  }
  const events = replay?.events ?? [];
  const head = events.length ? events[events.length - 1]!.event.seq : from!.since;
  const epoch = replay?.epoch;
  socket.send({ type: 'joined', conversationId, ref, seq: restart ? from!.since : head, members, history: [], ...(reset ? { reset: true } : {}), ...(epoch ? { epoch } : {}), ...(role ? { role } : {}) });
  for (const { json, event } of coalesceReplay(withoutRedacted(events))) {
    // Pace a long replay to the reader, or it would overflow the socket's send limit.
    if (socket.backlogged) await socket.drained();
    if (!ctx.isCurrent()) return;
    feed.send(json, event);
  }
  feed.open(head);
}
