// A user message from a member: a resend answered from the id index, or
// admitted (limits, files, moderation, the reply slot), written at the end of
// the active path or (an edit) beside the message it replaces, and its reply
// started or queued.
import type { ClientFrameOf, Siblings, ToolSpec } from '../../shared/protocol.js';
import type { StoredEvent } from '../backend/store.js';
import { RelayError } from '../errors.js';
import type { Placement } from '../history/branches.js';
import { admitSend, type SendExtras } from './admit-send.js';
import type { MemberSocket } from './conversation.js';
import { withRef } from './fanout.js';
import { originOf, type RoomHost } from './host.js';

/**
 * A retry of a send or edit that already went through costs nothing (no
 * limit is consulted): the sender gets its message again.
 */
export async function resent(host: RoomHost, socket: MemberSocket, frame: { clientMessageId?: string | undefined; ref?: string | undefined }): Promise<{ replyId: string | undefined } | undefined> {
  const seen = frame.clientMessageId ? await host.deps.store.ids.find(host.id, frame.clientMessageId) : undefined;
  if (!seen) return undefined;
  echo(host, socket, frame.ref, seen);
  return { replyId: seen.event.type === 'message' ? seen.event.replyId : undefined };
}

function echo(host: RoomHost, socket: MemberSocket, ref: string | undefined, stored: StoredEvent): void {
  socket.sendRaw(ref === undefined ? stored.json : withRef(stored.json, ref), host.id);
}

/** Resolves with the id of the reply the message asked for, if any. */
export async function submitMessage(host: RoomHost, socket: MemberSocket, frame: ClientFrameOf<'send'>, extra: SendExtras, placement?: Placement, siblings?: Siblings): Promise<string | undefined> {
  const { store, userLimits } = host.deps;
  const user = socket.user;
  const seen = await resent(host, socket, frame);
  if (seen) return seen.replyId;
  await userLimits.takeMessage(user.id);
  const { message, job } = await admitSend(host.deps, host.id, user, frame, extra);
  const entry = { type: 'message' as const, conversationId: host.id, message, ...(job ? { replyId: job.replyId } : {}), ...(siblings ? { siblings } : {}) };
  const submission = await store.submit(host.id, entry, job, placement).catch(async (err: unknown) => {
    if (job) await userLimits.endReply(user.id);
    throw err;
  });
  if (submission.kind !== 'appended' && job) await userLimits.endReply(user.id);
  if (submission.kind === 'queue-full') throw new RelayError('busy', 'the reply queue of this conversation is full');
  if (submission.kind === 'duplicate') {
    echo(host, socket, frame.ref, submission.stored);
    return submission.stored.event.type === 'message' ? submission.stored.event.replyId : undefined;
  }
  const announced = host.announce(submission.stored, originOf(socket, frame.ref));
  if (job && submission.start) host.start(job);
  // The sender's answers to its next frames must not overtake its own message.
  await announced;
  return job?.replyId;
}

/** The client's tools and, for a member that may use them, the relay's own; a client tool may not take one of their names. */
export function offeredTools(host: RoomHost, client: ClientFrameOf<'send'>['tools'], withOperator: boolean): ToolSpec[] | undefined {
  const operator = withOperator ? host.deps.operatorTools.specs : [];
  const clash = client?.find((t) => operator.some((o) => o.name === t.name));
  if (clash) throw new RelayError('bad_frame', `tools: ${clash.name} is the name of one of the server's own tools`);
  const all = [...(client ?? []), ...operator];
  return all.length ? all : undefined;
}
