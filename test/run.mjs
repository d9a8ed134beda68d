#!/usr/bin/env node
// Runs every test file in its own Node process (two at a time), so a leaked
// socket or timer in one file cannot hide or cause a failure in another, and
// prints one closing line: "N passed, N failed, N skipped".
//
// test/behaviour/ runs once per backend (memory, the embedded SQLite store,
// then Redis): the same suite is the contract every store keeps. test/cluster/ needs Redis. Redis comes from
// TEST_REDIS_URL, or else a redis-server this script starts on a free port and
// stops at the end; without either, the Redis runs are counted as skipped, never
// as passed. Under CI (CI=true) a skipped test fails the run: CI runs them all.
// Usage: node test/run.mjs [substring-filter ...]; TEST_BACKENDS=sqlite,redis runs only those.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 180_000);

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'output' ? [] : find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = find(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

/** A free loopback port, as the kernel hands one out. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Does a Redis answer PING at this port? */
function pings(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))));
  });
}

/** TEST_REDIS_URL, or a redis-server of our own on a free port; undefined when there is none. */
async function provideRedis() {
  if (process.env.TEST_REDIS_URL) return { url: process.env.TEST_REDIS_URL, stop: () => undefined };
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const failed = new Promise((resolve) => child.once('error', () => resolve(true)));
  for (let i = 0; i < 100; i++) {
    if (await Promise.race([failed, new Promise((r) => setTimeout(() => r(false), 50))])) return undefined;
    if (await pings(port)) return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill() };
  }
  child.kill();
  return undefined;
}

const needsRedis = (f) => f.startsWith('test/behaviour/') || f.startsWith('test/cluster/');
const redis = files.some(needsRedis) ? await provideRedis() : undefined;
if (files.some(needsRedis)) console.log(redis ? `redis: ${redis.url}` : 'redis: none (no TEST_REDIS_URL, no redis-server): Redis runs are skipped');

/** One run of one file: the file on a backend. */
const runs = files.flatMap((file) => {
  if (file.startsWith('test/behaviour/')) return [{ file, backend: 'memory' }, { file, backend: 'sqlite' }, { file, backend: 'redis' }];
  if (file.startsWith('test/cluster/')) return [{ file, backend: 'redis' }];
  return [{ file, backend: undefined }];
});

const only = process.env.TEST_BACKENDS?.split(',');
if (only) runs.splice(0, runs.length, ...runs.filter((r) => r.backend === undefined || only.includes(r.backend)));

const totals = { passed: 0, failed: 0, skipped: 0 };
const broken = [];
/** Tests a file registered, from its memory run: what its skipped Redis run did not run. */
const testCounts = new Map();

function report(label, passed, total, skipped, ok, out) {
  totals.passed += passed;
  totals.skipped += skipped;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label} (${passed}/${total}${skipped ? `, ${skipped} skipped` : ''})`);
  if (!ok || process.env.TEST_VERBOSE) {
    if (!ok) broken.push(label);
    if (out) console.log(out.replace(/^/gm, '    | '));
  }
}

function runFile({ file, backend }) {
  const label = backend ? `${file} [${backend}]` : file;
  const env = { ...process.env, FORCE_COLOR: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
  delete env.TEST_REDIS_URL;
  delete env.TEST_STORE;
  if (backend === 'memory' || backend === 'sqlite') env.TEST_STORE = backend;
  if (backend === 'redis') {
    if (!redis && file.startsWith('test/behaviour/')) {
      const n = testCounts.get(file) ?? 1;
      report(label, 0, 0, n, true, '');
      return Promise.resolve();
    }
    // A cluster test without Redis registers its tests as skipped itself.
    if (redis) env.TEST_REDIS_URL = redis.url;
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[run] ${label} exceeded ${FILE_TIMEOUT_MS} ms; killed\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const num = (name) => Number(out.match(new RegExp(`${name}:\\s+(\\d+)`))?.[1] ?? 0);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped');
      // uvu's Total counts the tests that ran; skipped ones are apart.
      const failed = Math.max(total - passed, code === 0 ? 0 : 1);
      if (backend === 'memory') testCounts.set(file, total + skipped);
      totals.failed += failed;
      report(label, passed, total, skipped, code === 0 && failed === 0, out);
      resolve();
    });
  });
}

// Memory runs first, so a Redis run that cannot happen knows how many tests it skips.
const queue = [...runs.filter((r) => r.backend !== 'redis'), ...runs.filter((r) => r.backend === 'redis')];
const workers = Array.from({ length: Math.min(Number(process.env.TEST_JOBS ?? availableParallelism()), 2) }, async () => {
  while (queue.length) await runFile(queue.shift());
});
await Promise.all(workers);
redis?.stop();

if (files.length === 0) console.log('no test files matched');
if (process.env.CI && totals.skipped > 0) {
  console.log(`CI runs every test: ${totals.skipped} skipped counts as failed`);
  totals.failed += totals.skipped;
}
if (broken.length) console.log(`failing files: ${broken.join(', ')}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || files.length === 0 ? 1 : 0);
