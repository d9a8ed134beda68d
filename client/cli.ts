// Terminal chat on the client library.
//   npm run chat -- --url ws://127.0.0.1:8080/ws --room NAME [--token T] [--once "question"] [--tool-wait SECONDS]
// Interactive: type a line to send; Ctrl-C during a reply cancels it, Ctrl-C again quits.
// --once: prints the streamed reply to stdout; exit 0 on stop/length, 1 on error, 130 on cancel.
// A reply that ends with tool calls is followed through the relay's tool loop to its last reply.
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { ConversationId, type HistoryMessage, type ToolCall } from '../shared/protocol.js';
import { RelayClient, type Conversation, type Reply, type ReplyResult, type ToolResult } from './index.js';
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
  await client.connect();
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
  /** Print whole lines above the prompt without mangling what the user is typing. */
  const say = (line: string) => {
    if (tty) process.stdout.write('\r\x1b[2K');
    process.stdout.write(`${line}\n`);
    if (!streaming) rl.prompt(true);
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
    if (s.state === 'closed' && s.code === 4401) say(dim('[unauthorized: pass a valid --token]'));
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
  room.on('reply.delta', (d) => d.text && process.stdout.write(d.text));
  room.on('reply.end', (e) => {
    streaming = false;
    cancelling = false;
    const note = e.finishReason === 'stop' ? '' : dim(` [${e.finishReason}${e.error ? `: ${e.error.message}` : ''}]`);
    process.stdout.write(`${note}\n`);
    for (const call of e.toolCalls ?? []) process.stdout.write(`${dim(`[tool call ${describeCall(call)}]`)}\n`);
    if (e.finishReason === 'tool_calls') awaitContinuation();
    if (inputDone) quitIfDone();
    else rl.prompt(true);
  });
  room.on('error', (e) => say(dim(`[error ${e.code}: ${e.message}]`)));

  function startReply(text: string) {
    if (tty) process.stdout.write('\r\x1b[2K');
    process.stdout.write(`${bold('assistant')}: ${text}`);
    streaming = true;
  }

  rl.on('line', (line) => {
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
      process.stdout.write(dim(' ^C'));
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
    process.stderr.write(`chat: ${err.message}\n`);
    finish(client, EXIT.error);
  });
}
