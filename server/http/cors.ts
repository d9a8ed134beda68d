// Origin rules for the HTTP endpoints a browser calls from another site (AG-UI
// front ends): the same list as for sockets (ALLOWED_ORIGINS; unset allows
// any). Credentials travel in the Authorization header, never in cookies, so
// an allowed origin is echoed without Access-Control-Allow-Credentials.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Headers for the response, or undefined when the request's origin is refused. */
export function corsHeaders(req: IncomingMessage, allowed: ReadonlySet<string> | undefined): Record<string, string> | undefined {
  const origin = req.headers.origin;
  if (origin === undefined) return {};
  if (allowed && !allowed.has(origin)) return undefined;
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

/** Answer a CORS preflight for a request with a bearer token and a body. */
export function answerPreflight(res: ServerResponse, headers: Record<string, string>, methods = 'POST, OPTIONS'): void {
  res.writeHead(204, {
    ...headers,
    'access-control-allow-methods': methods,
    'access-control-allow-headers': 'authorization, content-type, accept',
    'access-control-max-age': '600',
  });
  res.end();
}
