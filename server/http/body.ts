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
  if (body.status === 413) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.destroy());
  }
  sendJson(res, body.status, payload);
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
