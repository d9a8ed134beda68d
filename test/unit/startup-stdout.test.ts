// `npm start` (server/main.ts, in a real child process) exits on SIGTERM whatever
// its stdout is doing: a pipe whose reader stopped reading (full), or whose reader
// is gone (EPIPE), as `npm start | tee log` or `| head -1` leave it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient } from '../helpers.js';

const MAIN = new URL('../../server/main.ts', import.meta.url).pathname;

/** Servers still running when a test ends (it failed half-way): stopped, so no server outlives its test. */
const running = new Set<ChildProcess>();
test.after.each(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

/** A free loopback port, as the kernel hands one out: a server whose stdout is stuck cannot tell its port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * The server with its stdout on a named pipe (what `npm start | head` or `| tee` gives it), the
 * test holding the read end; `prefill` fills the pipe first, as a reader that stopped reading leaves it.
 */
async function startOnPipe(prefill: boolean) {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-stdout-')), 'stdout');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  if (prefill) {
    const filler = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      for (;;) writeSync(filler, Buffer.alloc(4096, 'x'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    closeSync(filler);
  }
  // Blocking, as a shell's pipe is: a write to it waits for the reader.
  const stdout = openSync(path, constants.O_WRONLY);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', LOCAL_MODEL_TOKEN_DELAY_MS: '2', STORE: 'memory' },
    stdio: ['ignore', stdout, 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  closeSync(stdout);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; ; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 1200) throw new Error(`server did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, exit, closeReader: () => closeSync(reader), stderr: () => stderr };
}

/** The exit code, or 'still running' when SIGTERM did not end the process within `ms`. */
async function exitAfterSigterm(server: Awaited<ReturnType<typeof startOnPipe>>, ms = 20_000): Promise<number | null | 'still running'> {
  server.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const verdict = await Promise.race([server.exit, new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)))]);
  clearTimeout(timer);
  if (verdict === 'still running') server.child.kill('SIGKILL');
  return verdict;
}

async function oneReply(port: number): Promise<void> {
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
  c.send({ type: 'send', conversationId: 'piped', text: 'hello' });
  assert.is((await c.next('reply.end')).finishReason, 'stop');
  c.kill();
}

test('SIGTERM ends the server when its stdout reader stopped reading (a full pipe)', async () => {
  const server = await startOnPipe(true);
  await oneReply(server.port);
  assert.is(await exitAfterSigterm(server), 0, server.stderr());
  server.closeReader();
});

test('a stdout reader that is gone (EPIPE) neither stops the server nor keeps it up after SIGTERM', async () => {
  const server = await startOnPipe(false);
  server.closeReader();
  await oneReply(server.port);
  assert.is((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200, 'still serving');
  assert.is(await exitAfterSigterm(server), 0, server.stderr());
});

test.run();
