// Who is on the other end of a socket, and which conversations they may use.
// With AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256/ES256 PEM, or a
// JWK/JWKS file) every hello must carry a valid JWT; without either, every
// connection is an anonymous user with a generated id and name.
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { Role, type User } from '../../shared/protocol.js';
import { ConfigError } from '../config.js';

export interface Identity {
  user: User;
  /** ms since the epoch; the session closes with 4401 then unless a fresh token arrives. */
  expiresAt: number | undefined;
  /** May this identity join / send to the conversation? */
  allows(conversationId: string): boolean;
  /** The role its token grants in a conversation (a JWT `roles` claim), where it grants one. */
  roleFor?: (conversationId: string) => Role | undefined;
  /** Anonymous mode: sign the token that brings this same user back (`welcome.sessionToken`); only a socket's welcome asks. */
  issueSessionToken?: () => Promise<string>;
  /** Anonymous mode: a user made just now (no session token of ours came with it), or one brought back by its token. */
  anonymous?: 'new' | 'returning';
}

export interface Authenticator {
  /** Resolves who a token stands for; rejects with AuthError when it stands for nobody. */
  authenticate(token: string | undefined): Promise<Identity>;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

const ADJECTIVES = ['Amber', 'Brisk', 'Calm', 'Dapper', 'Eager', 'Fuzzy', 'Gentle', 'Hazel', 'Jolly', 'Lucky', 'Mellow', 'Nimble', 'Plucky', 'Quiet', 'Rapid', 'Sunny'];
const ANIMALS = ['Otter', 'Falcon', 'Badger', 'Heron', 'Lynx', 'Marmot', 'Newt', 'Orca', 'Panda', 'Quokka', 'Raven', 'Stoat', 'Tapir', 'Wombat', 'Yak', 'Zebra'];
const anywhere = () => true;

/** How long an anonymous session token brings its user back; every connection gets a fresh one. */
const SESSION_TTL_S = 30 * 24 * 3600;
/** Marks the relay's own session tokens, so no other HS256 token signed with the same secret passes as one. */
const SESSION_ISSUER = 'relay-anonymous-session';
const SessionClaims = z.object({ sub: z.string().startsWith('anon-').max(64), name: z.string().min(1).max(64) });

/**
 * Anyone is let in: a token that is one of this relay's session tokens brings
 * back the anonymous user it was issued to (so a reload keeps its name and
 * its uploads); any other token, or none, makes a new anonymous user.
 */
export class AnonymousAuth implements Authenticator {
  constructor(private readonly sessionSecret: Uint8Array = randomBytes(32)) {}

  async authenticate(token: string | undefined): Promise<Identity> {
    const returning = token ? await this.returning(token) : undefined;
    const user = returning ?? newAnonymousUser();
    const issueSessionToken = () =>
      new SignJWT({ name: user.name })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuer(SESSION_ISSUER)
        .setExpirationTime(Math.floor(Date.now() / 1000) + SESSION_TTL_S)
        .sign(this.sessionSecret);
    return { user, expiresAt: undefined, allows: anywhere, issueSessionToken, anonymous: returning ? 'returning' : 'new' };
  }

  private async returning(token: string): Promise<User | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.sessionSecret, { algorithms: ['HS256'], issuer: SESSION_ISSUER, requiredClaims: ['exp', 'sub'] });
      const claims = SessionClaims.safeParse(payload);
      return claims.success ? { id: claims.data.sub, name: claims.data.name } : undefined;
    } catch {
      return undefined;
    }
  }
}

function newAnonymousUser(): User {
  const bytes = randomBytes(8);
  const name = `${ADJECTIVES[bytes[0]! % ADJECTIVES.length]} ${ANIMALS[bytes[1]! % ANIMALS.length]}`;
  return { id: `anon-${bytes.toString('hex')}`, name };
}

const Claims = z.object({
  sub: z.string().min(1).max(128),
  name: z.string().min(1).max(128).optional(),
  exp: z.number(),
  conversations: z.array(z.string().min(1).max(128)).max(256).optional(),
  /** `{pattern: role}`: the role in the conversations a pattern matches (the first pattern that matches counts). */
  roles: z.record(z.string().min(1).max(128), Role).optional(),
});

/** The role a `roles` claim grants in a conversation. */
export function roleMatcher(roles: Record<string, Role> | undefined): ((conversationId: string) => Role | undefined) | undefined {
  if (roles === undefined) return undefined;
  const entries = Object.entries(roles).slice(0, 256);
  return (id) => entries.find(([pattern]) => globMatch(pattern, id).matched)?.[1];
}

/** `team-1:*` style patterns: `*` stands for any run of conversation-id characters. */
export function conversationMatcher(patterns: string[] | undefined): (conversationId: string) => boolean {
  if (patterns === undefined) return anywhere;
  return (id) => patterns.some((p) => globMatch(p, id).matched);
}

/**
 * Does `id` match `pattern`, in which `*` stands for any run of characters
 * (ids are validated to conversation-id characters already)? Greedy, and on a
 * mismatch it only moves the most recent `*` one character on, so `steps`
 * (character comparisons) stay below (id.length + 1) × (pattern.length + 1).
 * A regex would try every way of placing the stars: `team-*-*-*-*-*-x`
 * against `team-` and 123 dashes took seconds.
 */
export function globMatch(pattern: string, id: string): { matched: boolean; steps: number } {
  let p = 0;
  let i = 0;
  let star = -1;
  let resume = 0;
  let steps = 0;
  while (i < id.length) {
    steps++;
    if (pattern[p] === '*') {
      star = p++;
      resume = i;
    } else if (p < pattern.length && pattern[p] === id[i]) {
      p++;
      i++;
    } else if (star >= 0) {
      // Let the last star swallow one more character and match the rest again.
      p = star + 1;
      i = ++resume;
    } else {
      return { matched: false, steps };
    }
  }
  while (pattern[p] === '*') p++;
  return { matched: p === pattern.length, steps };
}

type VerifyKey = Uint8Array | KeyObject | JWTVerifyGetKey;

/** Claims a token must carry beyond `sub` and `exp`, when configured. */
export interface ExpectedClaims {
  issuer?: string | undefined;
  audience?: string | undefined;
}

export class JwtAuth implements Authenticator {
  constructor(
    private readonly key: VerifyKey,
    private readonly algorithms: string[],
    private readonly expected: ExpectedClaims = {},
  ) {}

  async authenticate(token: string | undefined): Promise<Identity> {
    if (!token) throw new AuthError('a token is required');
    let payload: unknown;
    try {
      // The algorithm list is what keeps `alg: none` and HS/RS confusion out.
      const options = {
        algorithms: this.algorithms,
        requiredClaims: ['exp', 'sub'],
        ...(this.expected.issuer ? { issuer: this.expected.issuer } : {}),
        ...(this.expected.audience ? { audience: this.expected.audience } : {}),
      };
      const verified = typeof this.key === 'function' ? await jwtVerify(token, this.key, options) : await jwtVerify(token, this.key, options);
      payload = verified.payload;
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new AuthError(expired ? 'the token has expired' : 'the token is not valid');
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new AuthError('the token lacks sub, exp or well-formed claims');
    const { sub, name, exp, conversations, roles } = claims.data;
    const roleFor = roleMatcher(roles);
    return { user: { id: sub, name: name ?? sub }, expiresAt: exp * 1000, allows: conversationMatcher(conversations), ...(roleFor ? { roleFor } : {}) };
  }
}

const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

/** AUTH_JWT_PUBLIC_KEY: a PEM, or the path of a file holding a PEM, a JWK or a JWKS. */
function publicKeyAuth(value: string, expected: ExpectedClaims): JwtAuth {
  const text = !value.includes('-----BEGIN') && existsSync(value) ? readFileSync(value, 'utf8') : value;
  if (text.includes('-----BEGIN')) {
    const key = createPublicKey(text);
    const type = key.asymmetricKeyType;
    if (type === 'rsa') return new JwtAuth(key, ['RS256'], expected);
    if (type === 'ec') return new JwtAuth(key, ['ES256', 'ES384', 'ES512'], expected);
    throw new ConfigError(`invalid configuration: AUTH_JWT_PUBLIC_KEY: unsupported key type ${type}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError('invalid configuration: AUTH_JWT_PUBLIC_KEY: not a PEM, nor a file with a PEM, JWK or JWKS');
  }
  const single = z.record(z.string(), z.unknown()).safeParse(json);
  const set = Jwks.safeParse(json);
  const jwks: JSONWebKeySet | undefined = set.success
    ? { keys: set.data.keys }
    : single.success && typeof single.data.kty === 'string'
      ? { keys: [single.data] }
      : undefined;
  if (!jwks) throw new ConfigError('invalid configuration: AUTH_JWT_PUBLIC_KEY: JSON that is neither a JWK nor a JWKS');
  return new JwtAuth(createLocalJWKSet(jwks), ['RS256', 'ES256', 'ES384', 'ES512'], expected);
}

export function createAuthenticator(secret: string | undefined, publicKey: string | undefined, expected: ExpectedClaims = {}, sessionSecret?: string): Authenticator {
  if (secret && publicKey) throw new ConfigError('invalid configuration: set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY, not both');
  if (secret) return new JwtAuth(new TextEncoder().encode(secret), ['HS256'], expected);
  if (publicKey) return publicKeyAuth(publicKey, expected);
  return new AnonymousAuth(sessionSecret ? new TextEncoder().encode(sessionSecret) : undefined);
}
