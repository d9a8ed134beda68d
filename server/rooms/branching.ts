// Who may change a conversation's branches and settings, and when: the checks
// an edit, a regenerate, a switch and a configure pass before anything is
// written. Where the new message or reply goes is history/branches.ts's.
import type { ConversationSettings, SendOptions, User } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import type { SettingsPatch, Store } from '../backend/store.js';
import type { Upstreams } from '../upstream/router.js';

/** Configure and switch: the owner's (a conversation from before owners has none, and anyone may). */
export function mustOwn(owner: string | undefined, user: User, what: string): void {
  if (owner !== undefined && owner !== user.id) throw new RelayError('forbidden', `only the conversation's owner may ${what}`);
}

/** Edit and regenerate: the owner's, or the author's of the message concerned. */
export function mustOwnOrAsk(owner: string | undefined, user: User, authorId: string | undefined, what: string): void {
  if (authorId === user.id) return;
  mustOwn(owner, user, what);
}

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

/** A reply's options: the sender's own, else the conversation's. */
export function optionsFor(settings: ConversationSettings, options: SendOptions | undefined): SendOptions | undefined {
  const { model, temperature, maxTokens } = settings;
  const merged: SendOptions = { ...(model ? { model } : {}), ...(temperature !== undefined ? { temperature } : {}), ...(maxTokens ? { maxTokens } : {}), ...options };
  return Object.keys(merged).length ? merged : undefined;
}
