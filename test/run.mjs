#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own Node process (two at a time), so a
// leaked socket or timer in one file cannot hide or cause a failure in another,
// and prints one closing line: "N passed, N failed, N skipped".
// Usage: node test/run.mjs [substring-filter ...]
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
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

const totals = { passed: 0, failed: 0, skipped: 0 };
const broken = [];

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[run] ${file} exceeded ${FILE_TIMEOUT_MS} ms; killed\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const num = (label) => Number(out.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped');
      const failed = Math.max(total - passed - skipped, code === 0 ? 0 : 1);
      totals.passed += passed;
      totals.failed += failed;
      totals.skipped += skipped;
      const ok = code === 0 && failed === 0;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${file} (${passed}/${total}${skipped ? `, ${skipped} skipped` : ''})`);
      if (!ok || process.env.TEST_VERBOSE) {
        if (!ok) broken.push(file);
        console.log(out.replace(/^/gm, '    | '));
      }
      resolve();
    });
  });
}

const queue = [...files];
const workers = Array.from({ length: Math.min(Number(process.env.TEST_JOBS ?? availableParallelism()), 2) }, async () => {
  while (queue.length) await runFile(queue.shift());
});
await Promise.all(workers);

if (files.length === 0) console.log('no test files matched');
if (broken.length) console.log(`failing files: ${broken.join(', ')}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || files.length === 0 ? 1 : 0);
