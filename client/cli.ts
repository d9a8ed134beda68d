// Terminal chat on the client library.
//   npm run chat -- --url ws://127.0.0.1:8080/ws --room NAME [--token T] [--once "question"] [--tool-wait SECONDS]
// Interactive: type a line to send; Ctrl-C during a reply cancels it, Ctrl-C again quits.
// --once: prints the streamed reply to stdout; exit 0 on stop/length, 1 on error, 130 on cancel.
// A reply that ends with tool calls is followed through the relay's tool loop to its last reply.
import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from 'node:readline';
import { WebSocket } from 'ws';
import { ConversationId, type HistoryMessage, type ToolCall } from '../shared/protocol.js';
import { RelayClient, SendError, type Conversation, type Reply, type ReplyResult, type ToolResult } from './index.js';
import { resultFromEntry } from './tool-results.js';

interface Args {
  url: string;
  room: string;
  token: string | undefined;
  once: string | undefined;
  /** How long a tool loop may stay quiet (no result, no new reply) before we stop waiting for its next reply. */
  toolWaitMs: number;
}

const USAGE = 'usage: npm run chat -- [--url ws://127.0.0.1:8080/ws] [--room NAME] [--token T] [--once "question"] [--tool-wait SECONDS]';
const EXIT = { ok: 0, error: 1, usage: 2, cancelled: 130 } as const;
const DEFAULT_TOOL_WAIT_S = 60;
/** Tool output is shown up to this many characters: a result can be 32k of JSON. */
const SHOWN_OUTPUT_CHARS = 1_000;

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') fail(USAGE, EXIT.ok);
    const m = /^--(url|room|token|once|tool-wait)(?:=(.*))?$/s.exec(arg);
    if (!m) fail(`unknown argument ${arg}\n${USAGE}`, EXIT.usage);
    const value = m[2] ?? argv[++i];
    if (value === undefined) fail(`--${m[1]} needs a value\n${USAGE}`, EXIT.usage);
    values.set(m[1]!, value);
  }
  const room = values.get('room') ?? 'lobby';
  if (!ConversationId.safeParse(room).success) fail('--room must be 1-128 chars of A-Z a-z 0-9 . _ : -', EXIT.usage);
  const toolWait = Number(values.get('tool-wait') ?? DEFAULT_TOOL_WAIT_S);
  if (!Number.isFinite(toolWait) || toolWait < 0) fail('--tool-wait must be a number of seconds', EXIT.usage);
  return {
    url: values.get('url') ?? process.env.RELAY_URL ?? 'ws://127.0.0.1:8080/ws',
    room,
    token: values.get('token') ?? process.env.RELAY_TOKEN,
    once: values.get('once'),
    toolWaitMs: toolWait * 1_000,
  };
}

function fail(message: string, code: number): never {
  (code === EXIT.ok ? process.stdout : process.stderr).write(`${message}\n`);
  process.exit(code);
}

function exitCode(result: ReplyResult): number {
  if (result.finishReason === 'cancelled') return EXIT.cancelled;
  return result.finishReason === 'error' || result.finishReason === 'content_filter' ? EXIT.error : EXIT.ok;
}

/** End without cutting off output still being written to a pipe. */
function finish(client: RelayClient, code: number): void {
  client.close();
  process.exitCode = code;
  // Everything is closed, so Node exits by itself; this only guards against a stuck handle.
  setTimeout(() => process.exit(code), 2_000).unref();
}

async function once(client: RelayClient, room: Conversation, args: Args & { once: string }): Promise<void> {
  const { url } = args;
  // Before the first welcome a failed attempt means a wrong URL or a server that is down: say so, don't spin.
  const offReconnect = client.on('reconnecting', (s) => {
    process.stderr.write(`chat: cannot connect to ${url}${s.code ? ` (close ${s.code}${s.reason ? `: ${s.reason}` : ''})` : ''}\n`);
    finish(client, EXIT.error);
  });
  client.on('closed', (s) => {
    if (s.code === 4401) process.stderr.write(`chat: unauthorized${s.reason ? `: ${s.reason}` : ''}\n`);
  });
  try {
    await client.connect();
  } catch (err) {
    // A refused token was told by the close above; the rejection would say it again.
    if (err instanceof SendError && err.code === 'unauthorized') return finish(client, EXIT.error);
    throw err;
  }
  offReconnect();
  let reply = await room.ask(args.once);
  let interrupts = 0;
  process.on('SIGINT', () => {
    // Between two steps of a tool loop nothing runs that a cancel could stop.
    if (++interrupts > 1 || reply.done) process.exit(EXIT.cancelled);
    void room.cancel(reply.id).catch(() => process.exit(EXIT.cancelled));
  });
  // On stderr, like the other notes: stdout stays the replies' text for whoever pipes it.
  const note = (line: string) => process.stderr.write(`chat: ${line}\n`);
  for (;;) {
    const step = reply;
    const next = nextStep(room, step, args.toolWaitMs, (r) => note(describeResult(step.toolCalls, r)));
    const result = await printReply(step);
    for (const call of result.toolCalls ?? []) note(`tool call ${describeCall(call)}`);
    if (result.error) note(`reply failed: ${result.error.code}: ${result.error.message}`);
    else if (result.finishReason === 'cancelled') note('cancelled');
    const continuation = result.finishReason === 'tool_calls' ? await next : undefined;
    if (!continuation) {
      if (result.finishReason === 'tool_calls') note('no reply followed the tool calls');
      return finish(client, exitCode(result));
    }
    reply = continuation;
  }
}

/** Stream a reply's text to stdout, ending on a newline. */
async function printReply(reply: Reply): Promise<ReplyResult> {
  let wrote = '';
  for await (const piece of reply) {
    process.stdout.write(piece);
    wrote = piece;
  }
  if (wrote && !wrote.endsWith('\n')) process.stdout.write('\n');
  return reply.result;
}

/**
 * The reply the relay starts once all of `reply`'s tool calls are answered,
 * showing each result on the way; undefined when `reply` ends otherwise or
 * the loop stays quiet for `quietMs` (nobody answers, or the relay stopped the
 * loop). Listening starts now, so nothing that arrives meanwhile is missed.
 */
function nextStep(room: Conversation, reply: Reply, quietMs: number, show: (r: ToolResult) => void): Promise<Reply | undefined> {
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const offs: Array<() => void> = [];
    const done = (next: Reply | undefined) => {
      settled = true;
      clearTimeout(timer);
      for (const off of offs.splice(0)) off();
      resolve(next);
    };
    /** (Re)start the quiet period; only once the reply has ended with its calls. */
    const wait = () => {
      if (settled || !reply.done) return;
      clearTimeout(timer);
      // Unref'd: a wait alone never keeps the process up once the client is closed.
      timer = setTimeout(() => done(undefined), quietMs).unref();
    };
    for (const r of reply.toolResults.values()) show(r);
    if (reply.continuation) return done(reply.continuation);
    offs.push(
      reply.on('toolResult', (r) => (show(r), wait())),
      reply.on('continuation', done),
      // A continuation queues like any reply: while others in the room end, the wait is not over.
      room.on('reply.end', () => timer !== undefined && wait()),
    );
    void reply.result.then((end) => (end.finishReason === 'tool_calls' ? wait() : done(undefined)));
  });
}

function interactive(client: RelayClient, room: Conversation, args: Args): void {
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', terminal: process.stdin.isTTY });
  const tty = process.stdout.isTTY;
  const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[22m` : s);
  const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[22m` : s);
  const screen = new Screen(rl, process.stdout);
  /** Print whole lines above the prompt without mangling what the user is typing. */
  const say = (line: string) => {
    screen.print(`${line}\n`, { ownRow: true });
    // Without a terminal nothing is redrawn: a fresh prompt after each note, as a plain line.
    if (!rl.terminal && !streaming && !inputDone) rl.prompt(true);
  };
  let streaming = false;
  let cancelling = false;
  let inputDone = false;
  /** Running while a reply that ended with tool calls may still be continued: stdin ending does not quit then. */
  let toolLoop: ReturnType<typeof setTimeout> | undefined;
  const mine = new Set<string>();

  const show = (m: HistoryMessage, history: readonly HistoryMessage[]) => {
    const result = resultFromEntry(m);
    if (result) return say(dim(`[${describeResult(callsOf(history, result.replyId), result)}]`));
    say(`${bold(m.role === 'assistant' ? 'assistant' : (m.author?.name ?? 'someone'))}: ${m.text}`);
  };
  const quitIfDone = () => {
    if (inputDone && !streaming && toolLoop === undefined) finish(client, EXIT.ok);
  };
  /** Wait for the relay to go on from tool results; each new result restarts the wait. */
  const awaitContinuation = () => {
    clearTimeout(toolLoop);
    toolLoop = setTimeout(() => ((toolLoop = undefined), quitIfDone()), args.toolWaitMs).unref();
  };

  client.on('state', (s) => {
    if (s.state === 'open') say(dim(`[connected to ${args.room} as ${client.user?.name ?? '?'}]`));
    if (s.state === 'reconnecting' && s.delayMs !== undefined) say(dim(`[connection lost${s.code ? ` (${s.code})` : ''}; retrying in ${s.delayMs} ms]`));
    if (s.state === 'closed' && s.code === 4401) say(dim(`[unauthorized${s.reason ? `: ${s.reason}` : ''}; pass a valid --token]`));
  });
  room.on('joined', (j) => {
    if (j.reset) say(dim('[missed too much while away; here is the recent history]'));
    for (const m of j.history.slice(-10)) show(m, j.history);
    if (j.streaming) startReply(j.streaming.text);
  });
  room.on('message', (m) => {
    if (!m.message.clientMessageId || !mine.has(m.message.clientMessageId)) show(m.message, room.history);
  });
  room.on('tool.result', (e) => {
    say(dim(`[${describeResult(callsOf(room.history, e.replyId), e)}]`));
    if (toolLoop !== undefined) awaitContinuation();
  });
  room.on('presence', (p) => say(dim(`[here: ${p.members.map((u) => u.name).join(', ')}]`)));
  room.on('reply.start', () => {
    clearTimeout(toolLoop);
    toolLoop = undefined;
    startReply('');
  });
  room.on('reply.delta', (d) => d.text && screen.print(d.text));
  room.on('reply.end', (e) => {
    streaming = false;
    cancelling = false;
    const note = e.finishReason === 'stop' ? '' : dim(` [${e.finishReason}${e.error ? `: ${e.error.message}` : ''}]`);
    screen.print(`${note}\n`);
    for (const call of e.toolCalls ?? []) screen.print(`${dim(`[tool call ${describeCall(call)}]`)}\n`);
    if (e.finishReason === 'tool_calls') awaitContinuation();
    if (inputDone) quitIfDone();
    else if (!rl.terminal) rl.prompt(true);
  });
  room.on('error', (e) => say(dim(`[error ${e.code}: ${e.message}]`)));

  function startReply(text: string) {
    screen.print(`${bold('assistant')}: ${text}`, { ownRow: true });
    streaming = true;
  }

  rl.on('line', (line) => {
    // The line just sent stays on screen where it was typed; what streams on continues below it.
    screen.committed();
    const text = line.trim();
    if (text === '/quit' || text === '/exit') return finish(client, EXIT.ok);
    if (!text) return rl.prompt();
    const clientMessageId = crypto.randomUUID();
    mine.add(clientMessageId);
    if (mine.size > 1_000) mine.delete(mine.values().next().value!);
    room.send(text, { clientMessageId }).catch((err: Error) => say(dim(`[not sent: ${err.message}]`)));
    rl.prompt();
  });
  rl.on('SIGINT', () => {
    if (streaming && !cancelling) {
      cancelling = true;
      screen.print(dim(' ^C'));
      room.cancel().catch((err: Error) => say(dim(`[cancel failed: ${err.message}]`)));
      return;
    }
    process.stdout.write('\n');
    finish(client, EXIT.ok);
  });
  rl.on('close', () => {
    // stdin ended (a pipe): let a running reply finish before leaving.
    inputDone = true;
    if (room.unacknowledged === 0) quitIfDone();
  });
  process.stdin.on('keypress', throttle(() => room.typing(), 2_000));
  rl.prompt();
}

/**
 * The output of the interactive client, kept above the prompt. On a terminal
 * the prompt, with whatever the user has typed, stays on the last rows: each
 * print clears it, writes where the output left off (a streamed reply goes on
 * in its own row, not in the line being typed), and draws it again. Where the
 * output left off is counted in terminal columns, so a reply that wraps, or
 * holds wide characters, is continued at the right place.
 */
class Screen {
  /** Columns taken in the output's last row; 0 when the output ended with a newline. */
  private column = 0;
  /** Input ended: there is no prompt to keep any more. */
  private closed = false;

  constructor(
    private readonly rl: Interface,
    private readonly out: NodeJS.WriteStream,
  ) {
    rl.once('close', () => (this.closed = true));
  }

  /** `ownRow`: start on a row of its own, not at the end of a streamed line. */
  print(text: string, opts: { ownRow?: boolean } = {}): void {
    // Text from the model or other people must not steer the terminal: no escapes but our own bold and dim, no carriage returns.
    // eslint-disable-next-line no-control-regex
    const safe = text.replace(/\x1b(?!\[(?:1|2|22)m)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f\x80-\x9f]/g, '');
    const lead = opts.ownRow && this.column > 0 ? '\n' : '';
    if (!this.rl.terminal || this.closed) {
      this.out.write(lead + safe);
      this.column = advance(this.column, lead + safe, Number.POSITIVE_INFINITY);
      return;
    }
    const rows = this.rl.getCursorPos().rows;
    moveCursor(this.out, 0, -rows);
    cursorTo(this.out, 0);
    clearScreenDown(this.out);
    if (this.column > 0) {
      // Back to the end of the output, one row up from where the prompt was.
      moveCursor(this.out, 0, -1);
      cursorTo(this.out, this.column);
    }
    this.out.write(lead + safe);
    const columns = this.out.columns || 80;
    this.column = advance(this.column, lead + safe, columns);
    if (this.column > 0) this.out.write('\n');
    // A row filled to the last column: the text goes on in the row below, where the prompt is about to be.
    if (this.column >= columns) this.column = 0;
    // readline moves up as many rows as its cursor was down in the prompt before redrawing it.
    if (rows > 0) this.out.write('\n'.repeat(rows));
    this.rl.prompt(true);
  }

  /** The user sent a line: it stays where it was typed, so the output goes on below it. */
  committed(): void {
    this.column = 0;
  }
}

/** The column after writing `text` from `column`, in a terminal `columns` wide (our own SGR styling takes none). */
function advance(column: number, text: string, columns: number): number {
  // eslint-disable-next-line no-control-regex
  for (const ch of text.replace(/\x1b\[[0-9;]*m/g, '')) {
    if (ch === '\n') column = 0;
    else if (ch === '\t') column = Math.min((Math.floor(column / 8) + 1) * 8, columns - 1);
    else {
      const w = charWidth(ch);
      if (column >= columns || column + w > columns) column = w;
      else column += w;
    }
  }
  return column;
}

/** Terminal columns of one character: 0 for combining marks and joiners, 2 for wide East Asian characters and emoji. */
function charWidth(ch: string): number {
  const cp = ch.codePointAt(0)!;
  if (/[\p{Mn}\p{Me}\p{Cf}]/u.test(ch) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

function describeCall(call: ToolCall): string {
  return `${call.name} ${call.arguments}`;
}

/** `tool result NAME: OUTPUT` (`NAME (error)` when the tool failed), named after the call it answers, on one line the terminal cannot be steered by. */
function describeResult(calls: readonly ToolCall[], r: Pick<ToolResult, 'toolCallId' | 'output' | 'isError'>): string {
  const name = calls.find((c) => c.id === r.toolCallId)?.name ?? r.toolCallId;
  // eslint-disable-next-line no-control-regex
  const flat = r.output.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  const shown = flat.length > SHOWN_OUTPUT_CHARS ? `${flat.slice(0, SHOWN_OUTPUT_CHARS)}… (${flat.length - SHOWN_OUTPUT_CHARS} more characters)` : flat;
  return `tool result ${name}${r.isError ? ' (error)' : ''}: ${shown}`;
}

/** The calls of a reply in history: what a result is named after. */
function callsOf(history: readonly HistoryMessage[], replyId: string): readonly ToolCall[] {
  return history.find((m) => m.id === replyId && m.role === 'assistant')?.toolCalls ?? [];
}

function throttle(fn: () => void, ms: number): () => void {
  let last = 0;
  return () => {
    const now = Date.now();
    if (now - last >= ms) (last = now), fn();
  };
}

// A reader that went away (`| head`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? EXIT.ok : EXIT.error));

const args = parseArgs(process.argv.slice(2));
const client = new RelayClient({ url: args.url, WebSocket, ...(args.token !== undefined ? { token: args.token } : {}) });
const room = client.conversation(args.room);
if (args.once !== undefined) {
  once(client, room, { ...args, once: args.once }).catch((err: Error) => {
    process.stderr.write(`chat: ${err.message}\n`);
    finish(client, EXIT.error);
  });
} else {
  interactive(client, room, args);
  client.connect().catch((err: Error) => {
    // A refused token was already told, with what to do about it.
    if (!(err instanceof SendError && err.code === 'unauthorized')) process.stderr.write(`chat: ${err.message}\n`);
    finish(client, EXIT.error);
  });
}
