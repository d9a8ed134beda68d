// Operator-issued API keys: issued once in the clear, kept only hashed, and
// checked on every request against the shared store (so a revoked key stops
// at once on every node). `/admin/keys` issues, lists and revokes them.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { describeIssues } from '../../shared/protocol.js';
import type { ApiKeyRecord, ApiKeys } from '../backend/store.js';
import { bearer, readJson, refuseBody, sendJson } from './body.js';

/** Every key starts so, which tells it apart from a JWT. */
export const KEY_PREFIX = 'rk-';

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function isApiKey(credential: string): boolean {
  return credential.startsWith(KEY_PREFIX);
}

/** The key a secret stands for, unless unknown or revoked. */
export function verifyKey(keys: ApiKeys, secret: string): Promise<ApiKeyRecord | undefined> {
  return keys.byHash(hash(secret));
}

const NewKey = z.object({
  userId: z.string().min(1).max(128),
  name: z.string().min(1).max(128).optional(),
  conversations: z.array(z.string().regex(/^[A-Za-z0-9._:*-]{1,128}$/)).max(256).optional(),
});

/**
 * `/admin/keys` under `Authorization: Bearer ADMIN_TOKEN`: POST issues (the
 * secret is shown once), GET lists with usage, DELETE /admin/keys/ID revokes.
 */
export async function handleAdminKeys(req: IncomingMessage, res: ServerResponse, { apiKeys: keys }: { apiKeys: ApiKeys }, isAdmin: (token: string | undefined) => boolean): Promise<void> {
  if (!isAdmin(bearer(req))) return sendJson(res, 401, { error: 'admin token required' });
  const path = (req.url ?? '').split('?')[0]!;
  if (path === '/admin/keys' && req.method === 'GET') return sendJson(res, 200, { keys: await keys.list() });
  if (path === '/admin/keys' && req.method === 'POST') {
    const body = await readJson(req, 16 * 1024);
    if (!body.ok) return refuseBody(req, res, body, { error: body.message });
    const parsed = NewKey.safeParse(body.value);
    if (!parsed.success) return sendJson(res, 400, { error: describeIssues(parsed.error) });
    const id = `key_${randomBytes(8).toString('hex')}`;
    const secret = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
    const record: ApiKeyRecord = { id, createdAt: Date.now(), ...parsed.data };
    await keys.add(record, hash(secret));
    return sendJson(res, 201, { ...record, key: secret });
  }
  const revoke = path.match(/^\/admin\/keys\/([A-Za-z0-9_]{1,64})$/);
  if (revoke && req.method === 'DELETE') {
    return (await keys.revoke(revoke[1]!)) ? sendJson(res, 200, { revoked: revoke[1] }) : sendJson(res, 404, { error: 'no such key' });
  }
  return sendJson(res, 404, { error: 'not found' });
}

