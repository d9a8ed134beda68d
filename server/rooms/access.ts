// What a user may do in a conversation. The owner (who created it) and users
// the owner or their token made `owner` may do everything; a `member` may
// write; a `viewer` may only watch. An open conversation lets anyone its
// token allows in as a member; a private one only users given a role.
import type { Role, User } from '../../shared/protocol.js';
import type { Meta } from '../backend/store.js';
import { RelayError } from '../errors.js';

/** What a member socket brings: its user, and the role its token grants here (a JWT `roles` claim). */
export interface Who {
  readonly user: User;
  roleFor?(conversationId: string): Role | undefined;
}

/** The user's role, or undefined: they may not be in the conversation at all. */
export function roleOf(who: Who, conversationId: string, meta: Meta): Role | undefined {
  const { user } = who;
  if (meta.owner === user.id) return 'owner';
  const given = meta.roles[user.id];
  if (given === 'removed') return undefined;
  if (given) return given;
  const byToken = who.roleFor?.(conversationId);
  if (byToken) return byToken;
  return meta.settings.visibility === 'private' ? undefined : 'member';
}

export function mustJoin(role: Role | undefined): Role {
  if (!role) throw new RelayError('forbidden', 'this conversation is private, or you were taken out of it: ask its owner for a role');
  return role;
}

/** Sending, editing, regenerating, tool results and cancels take more than watching. */
export function mustWrite(role: Role | undefined): void {
  if (mustJoin(role) === 'viewer') throw new RelayError('forbidden', 'viewers may only watch this conversation');
}

/**
 * Configure, switch, roles: the owner's. A conversation from before owners
 * has none, and any member may.
 */
export function mustOwn(role: Role | undefined, meta: Meta, what: string): void {
  if (meta.owner === undefined && role !== undefined && role !== 'viewer') return;
  if (role !== 'owner') throw new RelayError('forbidden', `only the conversation's owner may ${what}`);
}

/** Edit and regenerate: the owner's, or the author's of the message concerned. */
export function mustOwnOrAsk(role: Role | undefined, meta: Meta, who: Who, authorId: string | undefined, what: string): void {
  if (authorId === who.user.id && role !== undefined && role !== 'viewer') return;
  mustOwn(role, meta, what);
}
