// Who makes an HTTP request to one of the protocol adapters (the OpenAI API,
// AG-UI): an API key, or whatever the socket's authenticator accepts (a JWT,
// or nobody in anonymous mode), with the conversations it may use.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Role, User } from '../../shared/protocol.js';
import type { ApiKeys } from '../backend/store.js';
import { AuthError, conversationMatcher, type Authenticator } from '../session/auth.js';
import { isApiKey, verifyKey } from './api-keys.js';
import { bearer } from './body.js';

export interface CallerDeps {
  auth: Authenticator;
  apiKeys: ApiKeys;
  /** The client's address, as the socket's per-IP limits see it. */
  clientIp(req: IncomingMessage): string;
}

export interface Caller {
  user: User;
  keyId: string | undefined;
  /** Conversations this caller may use. */
  mayBind(conversationId: string): boolean;
  /** The role a JWT's `roles` claim grants in a conversation. */
  roleFor?: ((conversationId: string) => Role | undefined) | undefined;
}

/** The caller of a request, or undefined when its credential is refused. */
export async function identify(req: IncomingMessage, deps: CallerDeps): Promise<Caller | undefined> {
  const credential = bearer(req);
  if (credential && isApiKey(credential)) {
    const key = await verifyKey(deps.apiKeys, credential);
    if (!key) return undefined;
    return { user: { id: key.userId, name: key.name ?? key.userId }, keyId: key.id, mayBind: conversationMatcher(key.conversations ?? []) };
  }
  try {
    const identity = await deps.auth.authenticate(credential);
    // Anonymous mode names a new user per call (with no session token of ours, or any other credential, as SDKs send one):
    // one caller's requests must share one user's limits.
    const user = identity.anonymous === 'new' ? anonymousByAddress(deps.clientIp(req)) : identity.user;
    return { user, keyId: undefined, mayBind: identity.allows, roleFor: identity.roleFor };
  } catch (err) {
    if (err instanceof AuthError) return undefined;
    throw err;
  }
}

function anonymousByAddress(ip: string): User {
  const id = createHash('sha256').update(ip).digest('hex').slice(0, 16);
  return { id: `anon-http-${id}`, name: 'HTTP client' };
}
