// The terminal client (`npm run chat`) as a user runs it, against a real relay.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startStack, type Stack } from '../helpers.js';

const CLI = fileURLToPath(new URL('../../client/cli.ts', import.meta.url));
const ANSWER = 'Bonjour! Here is a **short** answer, streamed — 世界 😊';
/** Long enough to wrap several times in a 60-column terminal, with wide characters on the way. */
const STORY = `Once upon a time ${'alpha beta gamma delta epsilon '.repeat(5)}世界 wide ${'zeta eta theta '.repeat(4)}the end.`;

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
      if (last.includes('story')) return { text: STORY, tokenDelayMs: 15 };
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

test('a refused token is told once, in --once mode and interactively', async () => {
  const guarded = await startStack({ env: { AUTH_JWT_SECRET: 'cli-test-secret-cli-test-secret-0123' } });
  try {
    const once = await chat(['--url', guarded.url, '--room', 'cli-auth', '--once', 'hi']);
    assert.is(once.code, 1);
    assert.is(once.stderr.match(/a token is required/g)?.length, 1, once.stderr);
    // Interactive, with stdin held open: the client gives up by itself.
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--url', guarded.url, '--room', 'cli-auth'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let all = '';
    child.stdout.on('data', (d) => (all += d));
    child.stderr.on('data', (d) => (all += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin.destroy();
    assert.is(code, 1);
    assert.is(all.match(/a token is required/g)?.length, 1, all);
  } finally {
    await guarded.close();
  }
});

/**
 * Just enough of a terminal to tell what a screen shows: printable characters
 * (two columns for wide ones) with autowrap, CR, LF, scrolling into a
 * scrollback, and the CSI sequences readline and the client use (cursor up,
 * down, right, left, column; erase line and display; SGR ignored).
 */
class Terminal {
  readonly scrollback: string[] = [];
  private screen: string[][];
  private row = 0;
  private col = 0;
  private wrapPending = false;

  constructor(
    readonly columns: number,
    readonly rows: number,
  ) {
    this.screen = Array.from({ length: rows }, () => this.blank());
  }

  private blank(): string[] {
    return Array.from({ length: this.columns }, () => ' ');
  }

  private lineFeed(): void {
    if (this.row < this.rows - 1) return void this.row++;
    this.scrollback.push(this.screen.shift()!.join('').trimEnd());
    this.screen.push(this.blank());
  }

  write(data: string): void {
    for (let i = 0; i < data.length; ) {
      const csi = /^\x1b\[([?\d;]*)([A-Za-z])/.exec(data.slice(i, i + 16));
      if (csi) {
        i += csi[0].length;
        this.control(csi[1]!, csi[2]!);
        continue;
      }
      const ch = String.fromCodePoint(data.codePointAt(i)!);
      i += ch.length;
      if (ch === '\r') (this.col = 0), (this.wrapPending = false);
      else if (ch === '\n') this.lineFeed(), (this.wrapPending = false);
      else if (ch === '\b') this.col = Math.max(0, this.col - 1);
      else if (ch >= ' ' && ch !== '\x7f') this.print(ch);
    }
  }

  private print(ch: string): void {
    const width = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\uff00-\uff60]|[\u{1f300}-\u{1faff}]/u.test(ch) ? 2 : 1;
    if (this.wrapPending || this.col + width > this.columns) {
      this.col = 0;
      this.lineFeed();
    }
    this.wrapPending = false;
    this.screen[this.row]![this.col] = ch;
    if (width === 2) this.screen[this.row]![this.col + 1] = '';
    this.col += width;
    if (this.col >= this.columns) (this.col = this.columns - 1), (this.wrapPending = true);
  }

  private control(params: string, final: string): void {
    const n = Number(params.split(';')[0] || (final === 'J' || final === 'K' ? 0 : 1));
    this.wrapPending = false;
    if (final === 'A') this.row = Math.max(0, this.row - n);
    else if (final === 'B') this.row = Math.min(this.rows - 1, this.row + n);
    else if (final === 'C') this.col = Math.min(this.columns - 1, this.col + n);
    else if (final === 'D') this.col = Math.max(0, this.col - n);
    else if (final === 'G') this.col = Math.min(this.columns - 1, n - 1);
    else if (final === 'K') {
      const line = this.screen[this.row]!;
      const [from, to] = n === 0 ? [this.col, this.columns] : n === 1 ? [0, this.col + 1] : [0, this.columns];
      for (let c = from; c < to; c++) line[c] = ' ';
    } else if (final === 'J' && n === 0) {
      for (let c = this.col; c < this.columns; c++) this.screen[this.row]![c] = ' ';
      for (let r = this.row + 1; r < this.rows; r++) this.screen[r] = this.blank();
    }
  }

  /** Every row, scrollback first, trailing blanks and empty rows at the end left out. */
  lines(): string[] {
    const all = [...this.scrollback, ...this.screen.map((l) => l.join('').trimEnd())];
    while (all.length && all.at(-1) === '') all.pop();
    return all;
  }
}

const hasScript = spawnSync('script', ['--version']).status === 0;
test(`interactive on a terminal: streamed text never lands in the line being typed${hasScript ? '' : ' (skipped: no script(1) for a pseudo-terminal)'}`, async () => {
  if (!hasScript) return;
  const columns = 60;
  const term = new Terminal(columns, 20);
  const command = `stty cols ${columns} rows 20; exec ${process.execPath} --import tsx ${CLI} --url ${stack.url} --room cli-tty`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } });
  child.stdout.setEncoding('utf8').on('data', (d: string) => term.write(d));
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; !ok(); i++) {
      if (i > 600) throw new Error(`timed out waiting for ${what}:\n${term.lines().join('\n')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const screen = () => term.lines().join('\n');
  try {
    await until('the welcome', () => screen().includes('[connected to cli-tty'));
    child.stdin.write('tell me a story\r');
    await until('the reply to start streaming', () => screen().includes('alpha beta'));
    child.stdin.write('draft');
    await until('the end of the reply', () => screen().replace(/\n/g, '').includes('the end.'));
    await until('the prompt', () => term.lines().at(-1) === '> draft');
    const lines = term.lines();
    const reply = lines.findIndex((l) => l.startsWith('assistant:'));
    assert.ok(reply >= 0, screen());
    // Rows of a wrapped reply join up again (notes aside): nothing was written into them, nothing of them was lost.
    const replyRows = lines.slice(reply, -1).filter((l) => !l.startsWith('['));
    const squeeze = (t: string) => t.replace(/\s+/g, '');
    assert.is(squeeze(replyRows.join('')), squeeze(`assistant: ${STORY}`), screen());
    assert.ok(replyRows.every((l) => !l.includes('draft') && !l.startsWith('>')), screen());
    assert.equal(lines.filter((l) => l.includes('draft')), ['> draft'], 'what was typed is on the prompt line only');
  } finally {
    child.stdin.write('\x15/quit\r');
    const exited = await Promise.race([new Promise((r) => child.once('close', () => r(true))), new Promise((r) => setTimeout(() => r(false), 10_000))]);
    if (!exited) child.kill('SIGKILL');
  }
});

test('bad arguments exit 2 with usage', async () => {
  const run = await chat(['--room', 'bad room!']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /--room/);
});

test.run();
