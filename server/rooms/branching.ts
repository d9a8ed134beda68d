// Edit, regenerate, switch and configure, and who may cancel: each checked
// (who may, is a reply in the way, is the message on the active path) before
// anything is written. Where the new message or reply goes is decided in
// history/branches.ts; the store writes it.
import { randomUUID } from 'node:crypto';
import type { ClientFrameOf } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import type { ReplyJob, Roles, SettingsPatch, StateChange, Store } from '../backend/store.js';
import { editTarget, nextSibling, regeneration } from '../history/branches.js';
import { optionsFor } from '../history/changes.js';
import { rootOf } from '../history/fold.js';
import type { Upstreams } from '../upstream/router.js';
import type { MemberSocket } from './conversation.js';
import { mustOwn, mustOwnOrAsk, mustWrite, roleOf, type Who } from './access.js';
import { originOf, type RoomHost } from './host.js';
import { resent, submitMessage } from './submit.js';

/**
 * A branch changes only between replies: with a reply running or queued, the
 * new branch would lose it or answer the wrong path.
 */
export async function mustBeIdle(store: Store, conversationId: string, runningHere: boolean): Promise<void> {
  const { running, queued } = runningHere ? { running: 'here', queued: 0 } : await store.replies.state(conversationId);
  if (running !== undefined || queued > 0) throw new RelayError('busy', 'a reply is running or waiting in this conversation: cancel it or wait for its end');
}

/** A configure names only models the server allows. */
export function checkSettings(patch: SettingsPatch, upstreams: Upstreams): void {
  if (patch.model && !upstreams.allows(patch.model)) throw new RelayError('forbidden', `model ${patch.model} is not allowed on this server`);
}

/** Give a user a role, or take them out (`removed`): the owner's, and never of the owner who created it. */
export async function setRole(host: RoomHost, socket: MemberSocket, ref: string | undefined, userId: string, role: Roles[string]): Promise<void> {
  const meta = await host.deps.store.log.meta(host.id);
  if (roleOf(socket, host.id, meta) !== 'owner') throw new RelayError('forbidden', "only the conversation's owner may give roles or take users out");
  if (userId === meta.owner) throw new RelayError('forbidden', 'the user who created the conversation stays its owner');
  await change(host, socket, ref, { type: 'role', userId, role, author: socket.user });
}

/** A new version of a user message beside it, answered like a send; the earlier one stays a branch. */
export async function editMessage(host: RoomHost, socket: MemberSocket, frame: ClientFrameOf<'edit'>): Promise<string | undefined> {
  // A resend of an edit that went through (its message is no longer where the edit was made) gets its answer again.
  const seen = await resent(host, socket, frame);
  if (seen) return seen.replyId;
  const { store } = host.deps;
  await host.settled();
  await mustBeIdle(store, host.id, host.busy);
  const [snap, meta] = await Promise.all([store.log.snapshot(host.id), store.log.meta(host.id)]);
  const target = editTarget(snap.history, frame.messageId);
  mustOwnOrAsk(roleOf(socket, host.id, meta), meta, socket, target.author?.id, 'edit a message of another user');
  const { messageId: _, ...send } = frame;
  const extras = { tools: target.tools, settings: snap.settings ?? {}, attachments: target.attachments };
  return submitMessage(host, socket, { ...send, type: 'send' }, extras, { parentId: target.parentId }, nextSibling(target));
}

/** Answer a user message again: a new reply beside the earlier ones, which stay branches. Resolves with its id. */
export async function regenerate(host: RoomHost, socket: MemberSocket, frame: ClientFrameOf<'regenerate'>): Promise<string> {
  const { store, userLimits, upstreams } = host.deps;
  const user = socket.user;
  await host.settled();
  await mustBeIdle(store, host.id, host.busy);
  const [snap, meta] = await Promise.all([store.log.snapshot(host.id), store.log.meta(host.id)]);
  const { question, parentId, siblings } = regeneration(snap.history, frame.messageId);
  mustOwnOrAsk(roleOf(socket, host.id, meta), meta, socket, question.author?.id, "answer another user's message again");
  const options = optionsFor(snap.settings ?? {}, frame.options);
  if (options?.model && !upstreams.allows(options.model)) throw new RelayError('forbidden', `model ${options.model} is not allowed on this server`);
  await userLimits.takeMessage(user.id);
  await userLimits.startReply(user.id);
  const job: ReplyJob = { replyId: randomUUID(), inReplyTo: question.id, user, options, tools: question.tools, placeAt: { parentId, siblings } };
  if (!(await store.replies.claimIdle(host.id, job).catch(() => false))) {
    await userLimits.endReply(user.id);
    throw new RelayError('busy', 'a reply is running or waiting in this conversation: cancel it or wait for its end');
  }
  host.start(job, originOf(socket, frame.ref));
  return job.replyId;
}

/** Move the active path, for every member, to the branch through a message. */
export async function switchBranch(host: RoomHost, socket: MemberSocket, frame: ClientFrameOf<'switch'>): Promise<void> {
  const { store } = host.deps;
  await host.settled();
  await mustBeIdle(store, host.id, host.busy);
  const meta = await store.log.meta(host.id);
  mustOwn(roleOf(socket, host.id, meta), meta, 'switch its branch');
  await change(host, socket, frame.ref, { type: 'switch', messageId: frame.messageId, author: socket.user });
}

/** The conversation's own title, system prompt, model and options, for its next replies. */
export async function configure(host: RoomHost, socket: MemberSocket, frame: ClientFrameOf<'configure'>): Promise<void> {
  const { type: _t, ref, conversationId: _c, ...patch } = frame;
  checkSettings(patch, host.deps.upstreams);
  const meta = await host.deps.store.log.meta(host.id);
  mustOwn(roleOf(socket, host.id, meta), meta, 'configure it');
  await change(host, socket, ref, { type: 'settings', patch, author: socket.user });
}

async function change(host: RoomHost, socket: MemberSocket, ref: string | undefined, change: StateChange): Promise<void> {
  const stored = await host.deps.store.log.change(host.id, change);
  // The sender's answers to its next frames must not overtake the change.
  await host.announce(stored, originOf(socket, ref));
}

/**
 * CANCEL_POLICY=asker-or-owner: who asked for the reply (the one running
 * here: `runningHere`), or the owner; for a tool loop waiting for results,
 * whose job is gone, the author of the question that began it. Resolves with
 * the reply judged, which the cancel then names: not another one that
 * started meanwhile.
 */
export async function mayCancel(host: RoomHost, who: Who, replyId: string | undefined, runningHere: { replyId: string; userId: string } | undefined): Promise<string | undefined> {
  const { store } = host.deps;
  const { user } = who;
  const target = replyId ?? runningHere?.replyId ?? (await store.replies.state(host.id)).running;
  // Nothing to cancel: the cancel itself answers not_found.
  if (target === undefined) return undefined;
  const meta = await store.log.meta(host.id);
  const role = roleOf(who, host.id, meta);
  mustWrite(role);
  if (role === 'owner') return target;
  let asker = runningHere?.replyId === target ? runningHere.userId : await store.replies.asker(host.id, target);
  if (asker === undefined) {
    const { history } = await store.log.snapshot(host.id);
    asker = rootOf(new Map(history.map((m) => [m.id, m])), target).root?.author?.id;
  }
  if (asker !== user.id) throw new RelayError('forbidden', "only who asked for this reply, or the conversation's owner, may cancel it");
  return target;
}
