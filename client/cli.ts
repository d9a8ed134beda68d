// Terminal chat on the client library.
//   npm run chat -- --url ws://127.0.0.1:8080/ws --room NAME [--token T] [--once "question"]
// Interactive: type a line to send; Ctrl-C during a reply cancels it, Ctrl-C again quits.
// --once: prints the streamed reply to stdout; exit 0 on stop/length, 1 on error, 130 on cancel.
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { ConversationId, type HistoryMessage, type ToolCall } from '../shared/protocol.js';
import { RelayClient, type Conversation, type ReplyResult } from './index.js';

interface Args {
  url: string;
  room: string;
  token: string | undefined;
  once: string | undefined;
}

const USAGE = 'usage: npm run chat -- [--url ws://127.0.0.1:8080/ws] [--room NAME] [--token T] [--once "question"]';
const EXIT = { ok: 0, error: 1, usage: 2, cancelled: 130 } as const;

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') fail(USAGE, EXIT.ok);
    const m = /^--(url|room|token|once)(?:=(.*))?$/s.exec(arg);
    if (!m) fail(`unknown argument ${arg}\n${USAGE}`, EXIT.usage);
    const value = m[2] ?? argv[++i];
    if (value === undefined) fail(`--${m[1]} needs a value\n${USAGE}`, EXIT.usage);
    values.set(m[1]!, value);
  }
  const room = values.get('room') ?? 'lobby';
  if (!ConversationId.safeParse(room).success) fail('--room must be 1-128 chars of A-Z a-z 0-9 . _ : -', EXIT.usage);
  return {
    url: values.get('url') ?? process.env.RELAY_URL ?? 'ws://127.0.0.1:8080/ws',
    room,
    token: values.get('token') ?? process.env.RELAY_TOKEN,
    once: values.get('once'),
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

async function once(client: RelayClient, room: Conversation, question: string, url: string): Promise<void> {
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
  const reply = await room.ask(question);
  let interrupts = 0;
  process.on('SIGINT', () => {
    if (++interrupts > 1) process.exit(EXIT.cancelled);
    void room.cancel(reply.id).catch(() => process.exit(EXIT.cancelled));
  });
  let wrote = '';
  for await (const piece of reply) {
    process.stdout.write(piece);
    wrote = piece;
  }
  const result = await reply.result;
  if (wrote && !wrote.endsWith('\n')) process.stdout.write('\n');
  // On stderr, like the other notes: stdout stays the reply's text for whoever pipes it.
  for (const call of result.toolCalls ?? []) process.stderr.write(`chat: tool call ${describeCall(call)}\n`);
  if (result.error) process.stderr.write(`chat: reply failed: ${result.error.code}: ${result.error.message}\n`);
  else if (result.finishReason === 'cancelled') process.stderr.write('chat: cancelled\n');
  finish(client, exitCode(result));
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
  const mine = new Set<string>();

  const show = (m: HistoryMessage) => say(`${bold(m.role === 'assistant' ? 'assistant' : (m.author?.name ?? 'someone'))}: ${m.text}`);

  client.on('state', (s) => {
    if (s.state === 'open') say(dim(`[connected to ${args.room} as ${client.user?.name ?? '?'}]`));
    if (s.state === 'reconnecting' && s.delayMs !== undefined) say(dim(`[connection lost${s.code ? ` (${s.code})` : ''}; retrying in ${s.delayMs} ms]`));
    if (s.state === 'closed' && s.code === 4401) say(dim('[unauthorized: pass a valid --token]'));
  });
  room.on('joined', (j) => {
    if (j.reset) say(dim('[missed too much while away; here is the recent history]'));
    for (const m of j.history.slice(-10)) show(m);
    if (j.streaming) startReply(j.streaming.text);
  });
  room.on('message', (m) => {
    if (!m.message.clientMessageId || !mine.has(m.message.clientMessageId)) show(m.message);
  });
  room.on('presence', (p) => say(dim(`[here: ${p.members.map((u) => u.name).join(', ')}]`)));
  room.on('reply.start', () => startReply(''));
  room.on('reply.delta', (d) => d.text && process.stdout.write(d.text));
  room.on('reply.end', (e) => {
    streaming = false;
    cancelling = false;
    const note = e.finishReason === 'stop' ? '' : dim(` [${e.finishReason}${e.error ? `: ${e.error.message}` : ''}]`);
    process.stdout.write(`${note}\n`);
    for (const call of e.toolCalls ?? []) process.stdout.write(`${dim(`[tool call ${describeCall(call)}]`)}\n`);
    if (inputDone) finish(client, EXIT.ok);
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
    if (!streaming && room.unacknowledged === 0) finish(client, EXIT.ok);
  });
  process.stdin.on('keypress', throttle(() => room.typing(), 2_000));
  rl.prompt();
}

function describeCall(call: ToolCall): string {
  return `${call.name} ${call.arguments}`;
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
  once(client, room, args.once, args.url).catch((err: Error) => {
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
