// The operator contract: `npm start` (server/main.ts) in a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestClient } from '../helpers.js';

const MAIN = new URL('../../server/main.ts', import.meta.url).pathname;

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', LOG_LEVEL: 'info', LOCAL_MODEL_TOKEN_DELAY_MS: '2', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

async function listeningPort(output: () => string): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const m = output().match(/"listen":"ws:\/\/127\.0\.0\.1:(\d+)\/ws"/);
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server did not start:\n${output()}`);
}

test('a bad configuration value stops the server with one clear message and exit code 2', async () => {
  const { output, exit } = start({ PORT: 'eighty' });
  assert.is(await exit, 2);
  assert.match(output(), /invalid configuration: PORT/);
  assert.is(output().trim().split('\n').length, 1);
});

test('without an API key it starts on the built-in demo model, says so, and streams a reply', async () => {
  const { child, output, exit } = start({ PORT: '0' });
  const port = await listeningPort(output);
  assert.match(output(), /DEMO model/);
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

test.run();
