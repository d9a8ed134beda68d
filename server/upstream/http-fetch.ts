// The fetch the openai SDK makes its requests with: node:http(s) on a
// keep-alive agent instead of the global fetch. The SDK still builds the
// request, retries before any byte of a reply, and turns error statuses into
// its typed errors; but a streaming body is handed to the relay as a plain
// Node stream, which costs a fraction of what fetch's web streams cost per
// token (measured in bench/results/profile-relay.md).
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

const bodies = new WeakMap<Response, IncomingMessage>();

/** The Node stream behind a successful response of nodeFetch. */
export function nodeBody(response: Response): IncomingMessage | undefined {
  return bodies.get(response);
}

/**
 * `request`, unless `signal` aborts first: the SDK sleeps between retries
 * without watching the signal (for as long as a Retry-After header asks), and
 * a cancelled or timed-out reply must not wait for it. A response that
 * arrives after the abort is closed unread.
 */
export function responseOrAbort(request: Promise<Response>, signal: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        if (!signal.aborted) return resolve(response);
        nodeBody(response)?.destroy();
        reject(signal.reason);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function abortError(): Error {
  const err = new Error('the request was aborted');
  err.name = 'AbortError';
  return err;
}

/** The response's header lines as name/value pairs, repeated names (set-cookie) kept. */
function responseHeaders(res: IncomingMessage): Array<[string, string]> {
  const raw = res.rawHeaders;
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

/**
 * `maxIdleConnections` bounds the connections kept for reuse between replies.
 * Node's default (256) is below what a busy relay runs at once: past it, every
 * reply that ends closes its connection and the next one pays a new TCP (and
 * TLS) handshake.
 */
export function nodeFetch(
  maxIdleConnections: number,
  /** `buffered`: successful bodies are read whole too, for answers read as JSON (moderation verdicts) rather than streamed. */
  opts: { buffered?: boolean } = {},
): typeof fetch {
  const pool = { keepAlive: true, maxFreeSockets: maxIdleConnections };
  const http = new HttpAgent(pool);
  const https = new HttpsAgent(pool);
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const secure = url.protocol === 'https:';
      const signal = init?.signal ?? undefined;
      if (signal?.aborted) return reject(abortError());
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: init?.method ?? 'GET',
        // The SDK hands a Headers; copying it into another first would cost a second pass per request.
        headers: Object.fromEntries(init?.headers instanceof Headers ? init.headers : new Headers(init?.headers)),
        agent: secure ? https : http,
      });
      // Aborting closes the connection: the upstream sees it and stops generating.
      const onAbort = () => req.destroy(abortError());
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal?.removeEventListener('abort', onAbort));
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        const headers = responseHeaders(res);
        if (status >= 200 && status < 300 && !opts.buffered) {
          const response = new Response(null, { status, statusText: res.statusMessage, headers });
          bodies.set(response, res);
          return resolve(response);
        }
        // Error bodies are small, and the SDK reads them for its error message; so are the answers a buffered fetch is for.
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve(new Response(Buffer.concat(chunks), { status, statusText: res.statusMessage, headers })));
        res.once('error', reject);
      });
      const body = init?.body;
      if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else if (body == null) req.end();
      else req.destroy(new TypeError('nodeFetch sends string or byte bodies only'));
    });
}
