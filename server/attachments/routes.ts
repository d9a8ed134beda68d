// Files over HTTP: `POST /attachments` takes one (its bytes are the body),
// `GET /attachments/:id` gives it back to whoever may see it: its uploader,
// and the members of a conversation whose messages carry it. Authenticated
// like the socket (the same JWT, an anonymous session token, or an API key).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../shared/codes.js';
import type { Attachment } from '../../shared/protocol.js';
import type { AttachmentStore } from '../backend/store.js';
import type { Logger } from '../log.js';
import type { UserLimits } from '../session/limits.js';
import { RelayError } from '../errors.js';
import { sendJson } from '../http/body.js';
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
  userLimits: UserLimits;
  settings: AttachmentSettings;
  allowedOrigins: ReadonlySet<string> | undefined;
  accepting(): boolean;
  log: Logger;
}

/** Upload bodies held in memory at once, in uploads of the largest size: more wait for a 503. */
const UPLOADS_IN_FLIGHT = 8;
const NAME_CHARS = 255;
const PATH = /^\/attachments(?:\/([A-Za-z0-9_-]{1,64}))?$/;

type Headers = Record<string, string>;

function refuse(res: ServerResponse, code: ErrorCode | 'unauthorized', message: string, headers: Headers, status = HTTP_STATUS[code]): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, status, { error: { code, message } });
}

/** Handles `/attachments` and `/attachments/:id`; false for any other path. */
export function handleAttachments(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, inFlight: { bytes: number }): boolean {
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
    if (err instanceof RelayError) return refuse(res, err.code, err.message, cors);
    deps.log.error({ err }, 'attachment request failed');
    if (!res.headersSent) refuse(res, 'internal', 'unexpected server error', cors);
  });
  return true;
}

async function callerOf(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, cors: Headers): Promise<Caller | undefined> {
  const caller = await identify(req, deps);
  if (!caller) refuse(res, 'unauthorized', 'a valid token is required', cors);
  return caller;
}

async function upload(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, cors: Headers, inFlight: { bytes: number }): Promise<void> {
  const { maxBytes, ttlMs, types } = deps.settings;
  const length = Number(req.headers['content-length']);
  if (req.headers['content-length'] === undefined || !Number.isSafeInteger(length)) {
    return refuse(res, 'bad_frame', 'an upload needs a Content-Length', cors, 411);
  }
  if (length > maxBytes) return refuseUnread(req, res, 'bad_frame', `the file is larger than ${maxBytes} bytes`, cors, 413);
  if (length === 0) return refuse(res, 'bad_frame', 'the file is empty', cors);
  const caller = await callerOf(req, res, deps, cors);
  if (!caller) return;
  if (inFlight.bytes + length > UPLOADS_IN_FLIGHT * maxBytes) return refuseUnread(req, res, 'overloaded', 'too many uploads at once; try again shortly', cors);
  inFlight.bytes += length;
  try {
    // An upload counts as a message against the sender's per-minute rate.
    await deps.userLimits.takeMessage(caller.user.id);
    const data = await readBody(req, length);
    if (!data) return refuseUnread(req, res, 'bad_frame', 'the body did not match its Content-Length', cors);
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
    inFlight.bytes -= length;
  }
}

async function download(req: IncomingMessage, res: ServerResponse, deps: AttachmentDeps, id: string, cors: Headers): Promise<void> {
  const caller = await callerOf(req, res, deps, cors);
  if (!caller) return;
  const record = await deps.attachments.get(id);
  if (!record) return refuse(res, 'not_found', 'no such attachment (or it has expired)', cors);
  const mayFetch = record.userId === caller.user.id || (await deps.attachments.referencedBy(id)).some((c) => caller.mayBind(c));
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

/** The body, exactly `length` bytes, or undefined when it is cut short (the client went away). */
function readBody(req: IncomingMessage, length: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    // Node's parser stops the body at its Content-Length: it never runs over.
    const data = Buffer.allocUnsafe(length);
    let at = 0;
    req.on('data', (chunk: Buffer) => {
      at += chunk.copy(data, at);
    });
    req.on('end', () => resolve(at === length ? data : undefined));
    req.on('close', () => resolve(undefined));
    req.on('error', () => resolve(undefined));
  });
}

/** Answer before (or instead of) reading the body: the connection closes after it, so the rest is never read as a next request. */
function refuseUnread(req: IncomingMessage, res: ServerResponse, code: ErrorCode, message: string, cors: Headers, status?: number): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.destroy());
  refuse(res, code, message, cors, status);
}
