// Reading a JSON request body, bounded: the HTTP endpoints' one way in.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Body = { ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string };

export function readJson(req: IncomingMessage, maxBytes: number): Promise<Body> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const settle = (body: Body) => {
      if (done) return;
      done = true;
      resolve(body);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        settle({ ok: false, status: 413, message: `the request body is larger than ${maxBytes} bytes` });
        // Stop reading; the response closes the connection.
        req.pause();
        return;
      }
      if (!done) chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        settle({ ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      } catch {
        settle({ ok: false, status: 400, message: 'the request body is not valid JSON' });
      }
    });
    req.on('error', () => settle({ ok: false, status: 400, message: 'the request body could not be read' }));
  });
}

/**
 * Answer a body that could not be read. One cut off for its size was left
 * unread: the connection closes after the answer, so it is never reused with
 * the rest of that body still in it.
 */
export function refuseBody(req: IncomingMessage, res: ServerResponse, body: Extract<Body, { ok: false }>, payload: unknown): void {
  if (body.status === 413) closeAfter(req, res);
  sendJson(res, body.status, payload);
}

/** The connection closes once the answer is out, so the rest of a body left unread is never taken for the next request. */
export function closeAfter(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.destroy());
}

/**
 * Exactly `length` bytes of body (a file upload), or undefined when the
 * client goes away, sends less, or stalls for `idleMs`. Call it before any
 * await, or a client that left meanwhile is never noticed.
 */
export function readBytes(req: IncomingMessage, length: number, idleMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    if (req.destroyed) return resolve(undefined);
    // Node's parser stops a body at its Content-Length: it never runs over.
    const data = Buffer.allocUnsafe(length);
    let at = 0;
    const stalled = setTimeout(() => req.destroy(), idleMs);
    const done = (value: Buffer | undefined) => {
      clearTimeout(stalled);
      resolve(value);
    };
    req.on('data', (chunk: Buffer) => {
      at += chunk.copy(data, at);
      stalled.refresh();
    });
    req.on('end', () => done(at === length ? data : undefined));
    req.on('close', () => done(undefined));
    req.on('error', () => done(undefined));
  });
}

/** Answer with a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/** The credential of `Authorization: Bearer …`, if any. */
export function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() || undefined : undefined;
}
