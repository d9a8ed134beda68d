#!/usr/bin/env node
// `npm start` runs this before the server: `npm run build` only when a source
// file, the package or a tsconfig changed since the last successful build (or
// dist/ lacks what the server needs). A full build takes tens of seconds; a
// start with nothing changed should not pay for it. Changes are told by
// content, not by modification time, so a checkout or a copy that keeps old
// times is still seen. The build's own output goes to stderr: stdout is the
// server's log lines, and a reader that closed it (`npm start | head -1`)
// must not fail the build.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const STAMP = join(root, 'dist', '.build-fingerprint');
const SOURCE_DIRS = ['server', 'demo', 'shared', 'client', 'scripts'];
const SOURCE_FILE = /\.(?:[cm]?[jt]s|tsx|css|html|json)$/;
const OUTPUTS = ['dist/server/main.js', 'dist/page/app.js', 'dist/page/index.html'];

/** Every file the build reads, in a stable order. */
function sources() {
  const found = readdirSync(root).filter((f) => f === 'package.json' || f === 'package-lock.json' || /^tsconfig.*\.json$/.test(f));
  const walk = (dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (SOURCE_FILE.test(e.name)) found.push(rel);
    }
  };
  for (const dir of SOURCE_DIRS) if (existsSync(join(root, dir))) walk(dir);
  return found.sort();
}

function fingerprint() {
  const hash = createHash('sha256');
  for (const file of sources()) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0');
  return hash.digest('hex');
}

const before = fingerprint();
const built = existsSync(STAMP) && readFileSync(STAMP, 'utf8') === before && OUTPUTS.every((f) => existsSync(join(root, f)));
if (!built) {
  // Within `npm start`, the npm that runs us; else whatever npm is on PATH.
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const run = spawnSync(npm[0], [...npm.slice(1), 'run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (run.status !== 0) process.exit(run.status ?? 1);
  // The fingerprint from before the build: a file edited while it ran makes the next start build again.
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(STAMP, before);
}
