// The package as a user gets it: `npm pack` (whose prepack builds the library),
// the tarball installed into a fresh app in a temp folder, and there a
// TypeScript file that imports `chat-relay/client` and `chat-relay/protocol`
// type-checked with this repository's compiler, and both imported by node.
// Without npm, or without a registry or cache to install the tarball's
// dependencies from, the test reports itself skipped: it never passes unrun.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { features } from '../../shared/features.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** Under the runner's 180 s per file, so a slow machine fails here with a reason rather than being killed. */
const BUDGET_MS = 170_000;
const started = Date.now();
const left = () => Math.max(1_000, BUDGET_MS - (Date.now() - started));
/** Errors that mean "no way to fetch dependencies here", not "the package is broken". */
const OFFLINE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|ENOTCACHED|only-if-cached|network/i;

interface Ran {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[killed after ${Math.round(left() / 1000)} s left of the budget]`;
      child.kill('SIGKILL');
    }, left());
    child.once('error', (err) => {
      clearTimeout(timer);
      done({ code: null, out: `${out}${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, out });
    });
  });
}

const tail = (s: string) => s.trim().split('\n').slice(-25).join('\n');

const APP_TS = `import { RelayClient, SendError, type ClientState, type SocketLike, type Welcome } from 'chat-relay/client';
import { ClientFrame, PROTOCOL_VERSION, ServerFrame, errorCodes, features, type Feature, type ServerFrameOf } from 'chat-relay/protocol';

class NoSocket implements SocketLike {
  readonly readyState = 0;
  send(_data: string): void {}
  close(): void {}
  addEventListener(): void {}
}

const client = new RelayClient({ url: 'ws://127.0.0.1:9/ws', WebSocket: NoSocket });
const state: ClientState = client.state;
const welcome: Welcome | undefined = client.welcome;
const features_: readonly string[] = client.features;
const hello: ClientFrame = { type: 'hello', token: 't' };
// @ts-expect-error a frame of no known type is not a ClientFrame
const unknownFrame: ClientFrame = { type: 'no-such-frame' };
const parsed = ServerFrame.safeParse({ type: 'pong', t: 1 });
const pong: ServerFrameOf<'pong'> | undefined = parsed.success && parsed.data.type === 'pong' ? parsed.data : undefined;
const feature: Feature = 'tools';
const codes: string[] = Object.keys(errorCodes);
const version: 1 = PROTOCOL_VERSION;
export { state, welcome, features_, hello, unknownFrame, pong, feature, codes, version, features, SendError };
`;

const RUN_MJS = `import { RelayClient, Conversation } from 'chat-relay/client';
import * as browser from 'chat-relay/client/browser';
import { ClientFrame, ServerFrame, PROTOCOL_VERSION, features } from 'chat-relay/protocol';
const pong = ServerFrame.safeParse({ type: 'pong', t: 1, addedLater: true });
console.log(JSON.stringify({
  client: typeof RelayClient,
  conversation: typeof Conversation,
  browserClient: typeof browser.RelayClient,
  version: PROTOCOL_VERSION,
  hello: ClientFrame.safeParse({ type: 'hello' }).success,
  badSend: ClientFrame.safeParse({ type: 'send', conversationId: 'no spaces', text: 'x' }).success,
  pongStripped: pong.success && !('addedLater' in pong.data),
  features: Object.keys(features),
}));
`;

const Manifest = z.object({ dependencies: z.record(z.string(), z.string()) });

type Setup = { app: string; pkg: string } | { skip: string } | { error: string };

async function setUp(scratch: string): Promise<Setup> {
  const npm = await run('npm', ['--version'], ROOT);
  if (npm.code !== 0) return { skip: `npm is not available (${tail(npm.out)})` };
  const packed = await run('npm', ['pack', '--pack-destination', scratch], ROOT);
  const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
  if (packed.code !== 0 || !tarball) return { error: `npm pack failed:\n${tail(packed.out)}` };
  const app = join(scratch, 'app');
  rmSync(app, { recursive: true, force: true });
  const files = {
    'package.json': JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true, type: 'module' }),
    'tsconfig.json': JSON.stringify({
      // Strict, declarations checked too, no @types/node: what the package's types need comes with it
      // (DOM only for zod's own declarations, which name URL: a browser app has it, a Node app has @types/node).
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false },
      files: ['app.ts'],
    }),
    'app.ts': APP_TS,
    'run.mjs': RUN_MJS,
  };
  mkdirSync(app, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(app, name), text);
  // No install scripts: what a client imports needs no native build, and the server's (better-sqlite3) takes minutes.
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', join(scratch, tarball)], app);
  if (installed.code !== 0) {
    return OFFLINE.test(installed.out) ? { skip: `cannot install the tarball's dependencies here:\n${tail(installed.out)}` } : { error: `npm install failed:\n${tail(installed.out)}` };
  }
  return { app, pkg: join(app, 'node_modules', 'chat-relay') };
}

const scratch = mkdtempSync(join(tmpdir(), 'chat-relay-pack-'));
const setup = await setUp(scratch);

if ('skip' in setup) {
  console.log(`the package test is skipped: ${setup.skip}`);
  test.skip('the packed tarball installs, type-checks and imports in a fresh app', () => undefined);
} else if ('error' in setup) {
  test('the project packs and its tarball installs in a fresh app', () => assert.unreachable(setup.error));
} else {
  const { app, pkg } = setup;

  test('the tarball holds built JavaScript and declarations, and nothing of it reaches outside the package', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else files.push(join(dir, e.name));
      }
    };
    walk(pkg);
    const rel = files.map((f) => f.slice(pkg.length + 1));
    for (const f of ['dist/client/index.js', 'dist/client/index.d.ts', 'dist/shared/index.js', 'dist/shared/index.d.ts', 'dist/browser/client.js']) {
      assert.ok(rel.includes(f), `the package has ${f}`);
    }
    assert.not.ok(rel.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript sources');
    const deps = Object.keys(Manifest.parse(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'))).dependencies);
    for (const file of files.filter((f) => /\.(js|d\.ts)$/.test(f))) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) {
          const target = resolve(dirname(file), spec!);
          assert.ok(target.startsWith(pkg + sep), `${file.slice(pkg.length + 1)} imports ${spec}, outside the package`);
          assert.ok(existsSync(target), `${file.slice(pkg.length + 1)} imports ${spec}, which the package lacks`);
        } else {
          const name = spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!;
          assert.ok(deps.includes(name), `${file.slice(pkg.length + 1)} imports ${spec}, not a dependency`);
        }
      }
    }
  });

  test('a TypeScript app importing chat-relay/client and chat-relay/protocol type-checks', async () => {
    const checked = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], app);
    assert.is(checked.code, 0, `tsc in the scratch app:\n${tail(checked.out)}`);
  });

  test('node imports both, and the browser build, from the installed package', async () => {
    const ran = await run(process.execPath, ['run.mjs'], app);
    assert.is(ran.code, 0, `node run.mjs:\n${tail(ran.out)}`);
    const line = ran.out.trim().split('\n').pop() ?? '';
    assert.equal(JSON.parse(line), {
      client: 'function',
      conversation: 'function',
      browserClient: 'function',
      version: 1,
      hello: true,
      badSend: false,
      pongStripped: true,
      features: Object.keys(features),
    });
  });
}

test.after(() => rmSync(scratch, { recursive: true, force: true }));
test.run();
