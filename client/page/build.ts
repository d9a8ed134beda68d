// Builds the chat page into dist/page/: app.js (the page and the client
// library, with zod, markdown-it and highlight.js, bundled by esbuild),
// style.css and index.html.
// `npm run build:page`; server/page.ts also calls it when the bundle is missing
// or older than its sources.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (works from source and from dist/). */
export function projectRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error('no package.json above the page build script');
  }
}

export const pageSourceDir = (root = projectRoot()) => join(root, 'client', 'page');
export const pageOutDir = (root = projectRoot()) => join(root, 'dist', 'page');

export async function buildPage(outDir = pageOutDir(), options: { minify?: boolean } = {}): Promise<void> {
  // Loaded lazily: esbuild is a dev dependency, and a server that finds a built page never needs it.
  const esbuild = await import('esbuild');
  const src = pageSourceDir();
  await mkdir(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: { app: join(src, 'main.ts'), style: join(src, 'style.css') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    minify: options.minify ?? true,
    // Written beside the bundle but not linked from it: the server links and serves them only when asked to (PAGE_SOURCE_MAPS).
    sourcemap: 'external',
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [
      {
        // zod's `z` namespace re-exports every locale (~250 kB of the bundle); the page only ever uses English.
        name: 'zod-without-locales',
        setup(b) {
          b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (a) => (/[\\/]zod[\\/]/.test(a.importer) ? { path: 'locales', namespace: 'zod-stub' } : undefined));
          b.onLoad({ filter: /.*/, namespace: 'zod-stub' }, () => ({ contents: 'export {};', loader: 'js' }));
        },
      },
    ],
  });
  await copyFile(join(src, 'index.html'), join(outDir, 'index.html'));
  // Pre-compressed copies; the server sends them to browsers that accept gzip.
  for (const f of ['app.js', 'style.css']) await writeFile(join(outDir, `${f}.gz`), gzipSync(await readFile(join(outDir, f)), { level: 9 }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = pageOutDir();
  buildPage(out).then(
    () => process.stdout.write(`page built into ${out}\n`),
    (err: unknown) => {
      process.stderr.write(`page build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
