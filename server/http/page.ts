// The chat page: GET / serves index.html, /assets/* the bundle and stylesheet
// built by client/page/build.ts into dist/page/. A missing or stale bundle
// (sources newer than it, as in development) is rebuilt on the first request
// that notices, when esbuild is installed. Source maps are served (and linked
// with a SourceMap header) only when asked for: they publish the client's
// sources, comments included.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
/** What the page may load: its own script, style and socket; nothing inline, nothing foreign. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
const ASSET = /^\/assets\/([a-z0-9-]+\.(?:js|css|map|js\.map|css\.map))$/;

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

const root = findRoot(dirname(fileURLToPath(import.meta.url)));
const pageDir = join(root, 'dist', 'page');
const sourceDirs = [join(root, 'client'), join(root, 'shared')];
let building: Promise<void> | undefined;

/** Newest modification time of the page's sources (client/ and shared/), or 0 where there are none (a deploy without them). */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|css|html)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of sourceDirs) if (existsSync(d)) walk(d);
  return newest;
}

function bundleTime(): number {
  const files = ['index.html', 'app.js', 'style.css'].map((f) => join(pageDir, f));
  return files.every((f) => existsSync(f)) ? Math.min(...files.map((f) => statSync(f).mtimeMs)) : -1;
}

/** Build when missing or stale; concurrent requests share one build. A failed build leaves what exists in place. */
async function ensureBuilt(): Promise<void> {
  const built = bundleTime();
  if (built >= 0 && built >= newestSource()) return;
  building ??= import('../../client/page/build.js')
    .then((b) => b.buildPage(pageDir))
    .catch((err: unknown) => {
      if (bundleTime() < 0) throw err;
    })
    .finally(() => (building = undefined));
  await building;
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

export interface PageOptions {
  /** Serve the bundle's source maps and point browsers at them. */
  sourceMaps: boolean;
}

async function respond(req: IncomingMessage, res: ServerResponse, file: string, isIndex: boolean, options: PageOptions): Promise<void> {
  if (isIndex) {
    try {
      await ensureBuilt();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return send(res, 503, `The chat page is not built (${why}). Run: npm run build:page\n`);
    }
  }
  const path = join(pageDir, file);
  let size: number;
  let mtime: Date;
  try {
    ({ size, mtime } = statSync(path));
  } catch {
    return send(res, 404, 'not found\n');
  }
  const etag = `W/"${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': TYPES[file.slice(file.indexOf('.'))] ?? TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream',
    // Asset names carry no hash: revalidate every time (a 304 is cheap).
    'cache-control': 'no-cache',
    etag,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (isIndex) {
    headers['content-security-policy'] = CSP;
    headers['x-frame-options'] = 'DENY';
  }
  if (options.sourceMaps && /\.(js|css)$/.test(file)) headers.sourcemap = `/assets/${file}.map`;
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    return void res.end();
  }
  // The build writes .gz twins of the bundle; serve one when the browser takes gzip and it is current.
  let body = path;
  const gz = `${path}.gz`;
  headers.vary = 'accept-encoding';
  if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && existsSync(gz) && statSync(gz).mtimeMs >= mtime.getTime()) {
    body = gz;
    size = statSync(gz).size;
    headers['content-encoding'] = 'gzip';
  }
  headers['content-length'] = String(size);
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return void res.end();
  createReadStream(body)
    .on('error', () => res.destroy())
    .pipe(res);
}

/** Handles GET/HEAD of / and /assets/*; returns false for every other path (the caller answers those). */
export function servePage(req: IncomingMessage, res: ServerResponse, options: PageOptions): boolean {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const isIndex = path === '/' || path === '/index.html';
  const asset = ASSET.exec(path)?.[1];
  const hidden = asset?.endsWith('.map') && !options.sourceMaps;
  if (!isIndex && asset === undefined && !path.startsWith('/assets/')) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('method not allowed\n');
    return true;
  }
  if (!isIndex && (asset === undefined || hidden)) {
    send(res, 404, 'not found\n');
    return true;
  }
  respond(req, res, isIndex ? 'index.html' : asset!, isIndex, options).catch(() => {
    if (!res.headersSent) send(res, 500, 'internal error\n');
    else res.destroy();
  });
  return true;
}
