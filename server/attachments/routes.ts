// Files over HTTP: `POST /attachments` takes one (its bytes are the body),
// `GET /attachments/:id` gives it back to whoever may see it: its uploader,
// and the members of a conversation whose messages carry it. Authenticated
// like the socket (the same JWT, an anonymous session token, or an API key).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../shared/codes.js';
import type { Attachment } from '../../shared/protocol.js';
import type { AttachmentStore, Meta } from '../backend/store.js';
import { roleOf } from '../rooms/access.js';
import type { Logger } from '../log.js';
import type { UserLimits } from '../session/limits.js';
import { RelayError } from '../errors.js';
import { closeAfter, readBytes, sendJson } from '../http/body.js';
import { identify, type Caller, type CallerDeps } from '../http/caller.js';
import { answerPreflight, corsHeaders } from '../http/cors.js';
import { HTTP_STATUS } from '../http/status.js';
import { sniff } from './kinds.js';

export interface AttachmentSettings {
  maxBytes: number;
  ttlMs: number;
  types: ReadonlySet<string>;
}

export interface AttachmentDeps extends CallerDeps {
  attachments: AttachmentStore;
  /** What says who may be in a conversation (its owner, roles, visibility), and whether it still exists. */
  meta(conversationId: string): Promise<Meta>;
  isDeleted(conversationId: string): Promise<boolean>;
  userLimits: UserLimits;
  settings: AttachmentSettings;
  allowedOrigins: ReadonlySet<string> | undefined;
  accepting(): boolean;
  log: Logger;
}

/** Upload bodies held in memory at once, in uploads of the largest size: more wait for a 503. */
const UPLOADS_IN_FLIGHT = 8;
/** Uploads one client address may have in flight, so one slow client cannot hold them all. */
const UPLOADS_PER_ADDRESS = 2;
/** A body that sends nothing for this long is dropped. */
const BODY_IDLE_MS = 30_000;
const NAME_CHARS = 255;
const PATH = /^\/attachments(?:\/([A-Za-z0-9_-]{1,64}))?$/;

/** Upload bodies being read: their bytes in all, and how many per client address. */
export class UploadsInFlight {
  private bytes = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly maxBytes: number) {}

  admit(address: string, bytes: number): boolean {
    const mine = this.byAddress.get(address) ?? 0;
    if (mine >= UPLOADS_PER_ADDRESS || this.bytes + bytes > UPLOADS_IN_FLIGHT * this.maxBytes) return false;
    this.byAddress.set(address, mine + 1);
    this.bytes += bytes;
    return true;
  }

  release(address: string, bytes: number): void {
    this.bytes -= bytes;
    const left = (this.byAddress.get(address) ?? 1) - 1;
    if (left > 0) this.byAddress.set(address, left);
    else this.byAddress.delete(address);
  }
}

type Headers = Record<string, string>;

function refuse(res: ServerResponse, code: ErrorCode | 'unauthorized', message: string, headers: Headers, status = HTTP_STATUS[code]): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, status, { error: { code, message } });
}

/** Handles `/attachments` and `/attachments/:id`; false for any other path. */
export function handleAttachments(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, inFlight: UploadsInFlight): boolean {
  const match = PATH.exec((req.url ?? '').split('?')[0] ?? '');
  if (!match) return false;
  const id = match[1];
  const cors = corsHeaders(req, deps.allowedOrigins);
  if (!cors) return (refuse(res, 'forbidden', 'this origin may not use the relay', {}), true);
  if (req.method === 'OPTIONS') return (answerPreflight(res, cors, id ? 'GET, OPTIONS' : 'POST, OPTIONS'), true);
  const allowed = id ? 'GET' : 'POST';
  if (req.method !== allowed) {
    res.setHeader('allow', `${allowed}, OPTIONS`);
    return (refuse(res, 'bad_frame', id ? 'GET an attachment' : 'POST the file as the body', cors, 405), true);
  }
  if (!deps.accepting()) return (refuse(res, 'overloaded', 'the server is shutting down; try another', cors), true);
  const work = id ? download(req, res, deps, id, cors) : upload(req, res, deps, cors, inFlight);
  work.catch((err: unknown) => {
    // A refused upload may leave its body unread: that connection is not used again.
    if (!req.complete) closeAfter(req, res);
    if (err instanceof RelayError) return refuse(res, err.code, err.message, cors);
    deps.log.error({ err }, 'attachment request failed');
    if (!res.headersSent) refuse(res, 'internal', 'unexpected server error', cors);
  });
  return true;
}

async function upload(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, cors: Headers, inFlight: UploadsInFlight): Promise<void> {
  const { maxBytes, ttlMs, types } = deps.settings;
  const refuseUnread = (code: ErrorCode | 'unauthorized', message: string, status?: number) => {
    closeAfter(req, res);
    refuse(res, code, message, cors, status);
  };
  const length = Number(req.headers['content-length']);
  if (req.headers['content-length'] === undefined || !Number.isSafeInteger(length)) return refuseUnread('bad_frame', 'an upload needs a Content-Length', 411);
  if (length > maxBytes) return refuseUnread('bad_frame', `the file is larger than ${maxBytes} bytes`, 413);
  if (length === 0) return refuse(res, 'bad_frame', 'the file is empty', cors);
  const address = deps.clientIp(req);
  if (!inFlight.admit(address, length)) return refuseUnread('overloaded', 'too many uploads at once; try again shortly');
  try {
    const body = readBytes(req, length, BODY_IDLE_MS);
    const caller = await identify(req, deps);
    if (!caller) return refuseUnread('unauthorized', 'a valid token is required');
    // An upload counts as a message against the sender's per-minute rate.
    await deps.userLimits.takeMessage(caller.user.id);
    const data = await body;
    if (!data) return refuseUnread('bad_frame', 'the body did not match its Content-Length');
    const type = await sniff(data, req.headers['content-type'], types);
    if (!type.ok) return refuse(res, 'unsupported_attachment', type.message, cors);
    const name = nameOf(req);
    const now = Date.now();
    const attachment: Attachment = { id: randomBytes(16).toString('base64url'), mediaType: type.mediaType, bytes: data.length, ...(name ? { name } : {}) };
    const stored = await deps.attachments.put({ ...attachment, userId: caller.user.id, createdAt: now, expiresAt: now + ttlMs }, data);
    if (stored === 'user-quota') return refuse(res, 'quota_exceeded', 'this user holds as many attachments as they may; older ones expire in time', cors);
    if (stored === 'full') return refuse(res, 'overloaded', 'the server holds as many attachments as it may; try later', cors);
    deps.log.info({ userId: caller.user.id, attachmentId: attachment.id, mediaType: attachment.mediaType, bytes: attachment.bytes }, 'attachment stored');
    for (const [header, value] of Object.entries(cors)) res.setHeader(header, value);
    sendJson(res, 201, attachment);
  } finally {
    inFlight.release(address, length);
  }
}

/** Is the caller allowed in one of these conversations (by their token, and by their role there)? */
async function mayAnyOf(deps: AttachmentDeps, caller: Caller, conversationIds: string[]): Promise<boolean> {
  for (const id of conversationIds) {
    if (!caller.mayBind(id) || (await deps.isDeleted(id))) continue;
    if (roleOf(caller, id, await deps.meta(id)) !== undefined) return true;
  }
  return false;
}

async function download(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, id: string, cors: Headers): Promise<void> {
  const caller = await identify(req, deps);
  if (!caller) return refuse(res, 'unauthorized', 'a valid token is required', cors);
  const record = await deps.attachments.get(id);
  if (!record) return refuse(res, 'not_found', 'no such attachment (or it has expired)', cors);
  const mayFetch = record.userId === caller.user.id || (await mayAnyOf(deps, caller, await deps.attachments.referencedBy(id)));
  if (!mayFetch) return refuse(res, 'forbidden', 'this attachment is not in a conversation you may use', cors);
  const data = await deps.attachments.data(id);
  if (!data) return refuse(res, 'not_found', 'no such attachment (or it has expired)', cors);
  const disposition = record.mediaType.startsWith('image/') ? 'inline' : 'attachment';
  res.writeHead(200, {
    ...cors,
    'content-type': record.mediaType,
    'content-length': data.length,
    'content-disposition': `${disposition}; filename*=UTF-8''${encodeURIComponent(record.name ?? id)}`,
    'x-content-type-options': 'nosniff',
    // Opened directly, it still runs nothing and loads nothing.
    'content-security-policy': "default-src 'none'; sandbox",
    'cache-control': 'private, max-age=3600',
  });
  res.end(data);
}

/** The file's name, from `?name=`: what people see, never a path on any disk. */
function nameOf(req: IncomingMessage): string | undefined {
  const raw = new URL(req.url ?? '/', 'http://relay').searchParams.get('name');
  const name = raw?.replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim().slice(0, NAME_CHARS);
  return name || undefined;
}
