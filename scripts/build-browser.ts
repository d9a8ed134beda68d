// Builds the client library for browsers without a bundler: dist/browser/client.js,
// one minified ES module with zod/mini inside, published as
// `chat-relay/client/browser` (its types are those of `chat-relay/client`). Apps
// with a bundler import `chat-relay/client` instead, so zod is not bundled twice.
// `npm run build:browser`; part of `npm run build`.
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Writes the bundle into `outDir` and returns its size in bytes. */
export async function buildBrowserClient(outDir = join(root, 'dist', 'browser')): Promise<number> {
  const result = await build({
    entryPoints: { client: join(root, 'client', 'index.ts') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // The chat page's targets: what the library promises to run on.
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    banner: { js: '/*! chat-relay client library (MIT); includes zod (MIT, Colin McDonnell) */' },
    metafile: true,
    logLevel: 'warning',
  });
  return Object.entries(result.metafile.outputs).find(([path]) => path.endsWith('client.js'))?.[1].bytes ?? 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildBrowserClient().then(
    (bytes) => process.stdout.write(`browser client built: dist/browser/client.js (${bytes} bytes)\n`),
    (err: unknown) => {
      process.stderr.write(`browser client build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
