// Invite tokens: an owner hands one out (`invite`), and whoever joins with it
// (`join.invite`) gets its role in that conversation, kept as any role the
// owner gives. Signed with SESSION_SECRET (the same on every node, or an
// invite from one node is unknown to the others), else a secret of this process.
import { randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { Role, User } from '../../shared/protocol.js';

/** Marks the relay's own invites, so no other token signed with the same secret passes as one. */
const ISSUER = 'relay-invite';
const Claims = z.object({ cid: z.string(), role: Role, by: User });

export interface Invite {
  role: Role;
  /** Who handed it out: the author of the role it grants. */
  by: User;
}

export class Invites {
  private readonly secret: Uint8Array;

  constructor(secret: string | undefined) {
    this.secret = secret ? new TextEncoder().encode(secret) : randomBytes(32);
  }

  async issue(conversationId: string, role: Role, by: User, ttlMs: number): Promise<{ token: string; expiresAt: number }> {
    const expiresAt = Math.floor((Date.now() + ttlMs) / 1000);
    const token = await new SignJWT({ cid: conversationId, role, by }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setExpirationTime(expiresAt).sign(this.secret);
    return { token, expiresAt: expiresAt * 1000 };
  }

  /** The invite a token is for this conversation, or undefined (forged, expired, or for another one). */
  async verify(token: string, conversationId: string): Promise<Invite | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], issuer: ISSUER, requiredClaims: ['exp'] });
      const claims = Claims.safeParse(payload);
      return claims.success && claims.data.cid === conversationId ? { role: claims.data.role, by: claims.data.by } : undefined;
    } catch {
      return undefined;
    }
  }
}
