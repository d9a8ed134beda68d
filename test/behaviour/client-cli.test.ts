// The terminal client (`npm run chat`) as a user runs it, against a real relay.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startStack, type Stack } from '../helpers.js';

const CLI = fileURLToPath(new URL('../../client/cli.ts', import.meta.url));
const ANSWER = 'Bonjour! Here is a **short** answer, streamed — 世界 😊';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function chat(args: string[], onStdout?: (soFar: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({
    plan: (req) => {
      const last = req.messages[req.messages.length - 1]?.content ?? '';
      if (last.includes('fail')) return { text: 'partial answer that then', errorAfterTokens: 3 };
      if (last.includes('slow')) return { text: 'word '.repeat(400), tokenDelayMs: 10 };
      return { text: ANSWER };
    },
  });
});
test.after.each(async () => {
  await stack.close();
});

test('--once prints the streamed reply and exits 0', async () => {
  const run = await chat(['--url', stack.url, '--room', 'cli-once', '--once', 'say hello']);
  assert.is(run.stderr, '', 'nothing on stderr');
  assert.is(run.code, 0);
  assert.is(run.stdout, `${ANSWER}\n`);
  assert.is(stack.model.requests.length, 1);
  assert.is(stack.model.requests[0]!.messages.at(-1)!.content, 'say hello');
});

test('--once exits 1 when the reply fails, with the reason on stderr', async () => {
  const run = await chat(['--url', stack.url, '--room', 'cli-fail', '--once', 'please fail']);
  assert.is(run.code, 1);
  assert.match(run.stderr, /upstream_error/);
});

test('--once exits 130 when interrupted mid-reply (the reply is cancelled)', async () => {
  let interrupted = false;
  const run = await chat(['--url', stack.url, '--room', 'cli-cancel', '--once', 'be slow'], (soFar, child) => {
    if (!interrupted && soFar.length > 20) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  assert.ok(interrupted);
  assert.is(run.code, 130);
  assert.match(run.stderr, /cancelled/);
  assert.ok(run.stdout.length < 'word '.repeat(400).length, 'stopped before the end');
});

test('--once exits 1 when nothing listens at the url', async () => {
  const run = await chat(['--url', 'ws://127.0.0.1:9/ws', '--room', 'x', '--once', 'hi']);
  assert.is(run.code, 1);
  assert.match(run.stderr, /cannot connect/);
});

test('bad arguments exit 2 with usage', async () => {
  const run = await chat(['--room', 'bad room!']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /--room/);
});

test.run();
