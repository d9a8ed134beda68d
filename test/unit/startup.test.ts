// The operator contract: `npm start` (server/main.ts) in a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
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

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    // The default store, in a data directory of this test's own.
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', LOG_LEVEL: 'info', LOCAL_MODEL_TOKEN_DELAY_MS: '2', DATA_DIR: mkdtempSync(join(tmpdir(), 'relay-start-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  running.add(child);
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exit };
}

async function listeningPort(output: () => string): Promise<number> {
  // Bounded, not a pass condition: tsx compiles the server first, which takes a while on a busy machine.
  for (let i = 0; i < 2400; i++) {
    const m = output().match(/"listen":"ws:\/\/127\.0\.0\.1:(\d+)\/ws"/);
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server did not start:\n${output()}`);
}

test('a bad configuration value (an empty one too) stops the server with one clear message and exit code 2', async () => {
  for (const port of ['eighty', '']) {
    const { output, exit } = start({ PORT: port });
    assert.is(await exit, 2);
    assert.match(output(), /invalid configuration: PORT/);
    assert.is(output().trim().split('\n').length, 1);
  }
});

test('without an API key it starts on the built-in demo model, says so, and streams a reply', async () => {
  const { child, output, exit } = start({ PORT: '0' });
  const port = await listeningPort(output);
  assert.match(output(), /DEMO model/);
  // The start-up line: where the page and the socket are, and where replies come from.
  const started = JSON.parse(output().split('\n').find((l) => l.includes('"listen"'))!) as Record<string, unknown>;
  assert.is(started.page, `http://127.0.0.1:${port}/`);
  assert.match(String(started.msg), `page http://127.0.0.1:${port}/, WebSocket ws://127.0.0.1:${port}/ws; replies from the built-in demo model (relay-demo-1); conversations kept in ${tmpdir()}`);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.is(health.status, 200);

  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
  c.send({ type: 'send', conversationId: 'demo', text: 'Hello, demo!' });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop');
  const deltas = c.frames.filter((f) => f.type === 'reply.delta');
  assert.ok(deltas.length > 10, 'token by token');

  // SIGTERM mid-reply: the reply still gets its reply.end, the socket closes with 1001, exit 0.
  c.send({ type: 'send', conversationId: 'demo', text: 'Another one' });
  await c.next('reply.delta');
  child.kill('SIGTERM');
  assert.is((await c.closed).code, 1001);
  assert.ok(c.frames.filter((f) => f.type === 'reply.end').length === 2, 'the interrupted reply ended');
  assert.is(await exit, 0);
  assert.not.match(output(), /Hello, demo!/, 'message text is never logged');
});

test('with a key, the start-up line names the upstream host and model, never the key', async () => {
  const { child, output, exit } = start({ PORT: '0', OPENAI_API_KEY: 'sk-startup-secret-key', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', OPENAI_MODEL: 'gpt-test' });
  const port = await listeningPort(output);
  const started = JSON.parse(output().split('\n').find((l) => l.includes('"listen"'))!) as Record<string, unknown>;
  assert.equal(started.upstreams, [{ model: 'gpt-test', host: '127.0.0.1:9', dialect: 'chat' }]);
  assert.match(String(started.msg), `WebSocket ws://127.0.0.1:${port}/ws; replies from gpt-test at 127.0.0.1:9`);
  assert.not.match(output(), /DEMO/);
  child.kill('SIGTERM');
  assert.is(await exit, 0);
  assert.not.match(output(), /sk-startup/);
});

test.run();
