// Files over the relay's HTTP endpoints: upload one (`POST /attachments`,
// with progress where the platform reports it) and fetch one back. The
// credential is the socket's: its token, or the anonymous session token the
// server handed out in `welcome`.
import { Attachment } from '../shared/protocol.js';
import { SendError } from './errors.js';

export interface UploadOptions {
  /** Shown to members and the model; defaults to the File's own name. */
  name?: string;
  /** Bytes sent so far of `total` (browsers only: fetch in Node reports nothing). */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** The HTTP origin of a relay whose socket is at `wsUrl` (ws://host/ws → http://host). */
export function httpOrigin(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url.origin;
}

/** The server's `{error: {code, message}}` as a SendError, or the status when the body says nothing. */
function failure(status: number, body: string): SendError {
  try {
    const parsed: unknown = JSON.parse(body);
    const error = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? parsed.error : undefined;
    if (typeof error === 'object' && error !== null && 'code' in error && 'message' in error) return new SendError(String(error.message), String(error.code));
  } catch {
    // not JSON: fall through
  }
  return new SendError(`the upload failed with HTTP ${status}`, status === 401 ? 'unauthorized' : 'internal');
}

function parseAttachment(status: number, body: string): Attachment {
  if (status !== 201) throw failure(status, body);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const parsed = Attachment.safeParse(json);
  if (!parsed.success) throw new SendError('the server answered the upload with something else than an attachment', 'internal');
  return parsed.data;
}

export async function upload(origin: string, credential: string | undefined, file: Blob, opts: UploadOptions = {}): Promise<Attachment> {
  const name = opts.name ?? (typeof File !== 'undefined' && file instanceof File ? file.name : undefined);
  const url = `${origin}/attachments${name ? `?name=${encodeURIComponent(name)}` : ''}`;
  const headers: Record<string, string> = { 'content-type': file.type || 'application/octet-stream' };
  if (credential) headers.authorization = `Bearer ${credential}`;
  if (typeof XMLHttpRequest !== 'undefined' && opts.onProgress) return uploadWithProgress(url, headers, file, opts);
  const res = await fetch(url, { method: 'POST', headers, body: file, ...(opts.signal ? { signal: opts.signal } : {}) });
  return parseAttachment(res.status, await res.text());
}

/** fetch cannot report upload progress; XMLHttpRequest can. */
function uploadWithProgress(url: string, headers: Record<string, string>, file: Blob, opts: UploadOptions): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (ev) => opts.onProgress?.(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      try {
        resolve(parseAttachment(xhr.status, xhr.responseText));
      } catch (err) {
        reject(err);
      }
    };
    xhr.onerror = () => reject(new SendError('the upload could not reach the server', 'disconnected'));
    xhr.onabort = () => reject(new SendError('the upload was cancelled', 'cancelled'));
    opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

/** An attachment's bytes, as a member of a conversation that carries it may fetch them. */
export async function download(origin: string, credential: string | undefined, id: string): Promise<Blob> {
  const res = await fetch(`${origin}/attachments/${encodeURIComponent(id)}`, credential ? { headers: { authorization: `Bearer ${credential}` } } : {});
  if (!res.ok) throw failure(res.status, await res.text());
  return res.blob();
}
