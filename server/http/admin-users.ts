// `GET /admin/users/:userId` and `DELETE /admin/users/:userId` under
// `Authorization: Bearer ADMIN_TOKEN`: everything the relay holds about one
// user, exported as JSON, or erased, for data-protection requests. The usage
// ledger holds no message text and is kept (billing records) on erase.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AttachmentStore, LedgerEntry, Store } from '../backend/store.js';
import { concerning } from '../history/erase.js';
import type { Conversations } from '../rooms/conversations.js';
import { bearer, sendJson } from './body.js';

export interface AdminUsersDeps {
  store: Store;
  attachments: AttachmentStore;
  conversations: Conversations;
}

const PATH = /^\/admin\/users\/([^/]{1,384})$/;

export async function handleAdminUsers(req: IncomingMessage, res: ServerResponse, deps: AdminUsersDeps, isAdmin: (token: string | undefined) => boolean): Promise<void> {
  if (!isAdmin(bearer(req))) return sendJson(res, 401, { error: 'admin token required' });
  const raw = PATH.exec(new URL(req.url ?? '/', 'http://relay').pathname)?.[1];
  const userId = raw === undefined ? undefined : decode(raw);
  if (userId === undefined || userId.length === 0 || userId.length > 128) return sendJson(res, 404, { error: 'not found' });
  if (req.method === 'GET') return sendJson(res, 200, await exportUser(deps, userId));
  if (req.method === 'DELETE') return sendJson(res, 200, await eraseUser(deps, userId));
  sendJson(res, 405, { error: 'GET or DELETE' });
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** Their conversations (the messages that are theirs or answer theirs, on every branch), usage, files and API keys. */
async function exportUser({ store, attachments }: AdminUsersDeps, userId: string) {
  const conversations = [];
  for (const summary of await store.lists.page(userId, undefined)) {
    const { conversationId } = summary;
    const [entries, meta] = await Promise.all([store.log.entries(conversationId), store.log.meta(conversationId)]);
    const role = meta.owner === userId ? 'owner' : meta.roles[userId];
    conversations.push({ conversationId, title: summary.title, lastActivity: summary.lastActivity, ...(role ? { role } : {}), messages: concerning(entries, userId) });
  }
  const usage: LedgerEntry[] = [];
  await store.ledger.read({ from: 0, to: Date.now() + 1, userId }, (page) => usage.push(...page));
  const apiKeys = (await store.apiKeys.list()).filter((k) => k.userId === userId);
  return { userId, exportedAt: new Date().toISOString(), conversations, usage, attachments: await attachments.ofUser(userId), apiKeys };
}

/**
 * The conversations they own are deleted for everyone; in the others their
 * words are erased; their files, API keys and list go.
 */
async function eraseUser({ store, attachments, conversations }: AdminUsersDeps, userId: string) {
  let deleted = 0;
  let erasedIn = 0;
  let messagesErased = 0;
  for (const { conversationId } of await store.lists.page(userId, undefined)) {
    if ((await store.log.meta(conversationId)).owner === userId) {
      await conversations.get(conversationId).destroy();
      deleted++;
      continue;
    }
    const changed = await store.eraseAuthor(conversationId, userId);
    messagesErased += changed;
    if (changed > 0) erasedIn++;
  }
  const keys = (await store.apiKeys.list()).filter((k) => k.userId === userId);
  for (const key of keys) await store.apiKeys.revoke(key.id);
  const files = await attachments.removeUser(userId);
  await store.lists.forgetUser(userId);
  return { userId, conversationsDeleted: deleted, conversationsErased: erasedIn, messagesErased, attachmentsRemoved: files, apiKeysRevoked: keys.length };
}
