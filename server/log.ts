// The one pino logger. Child loggers carry connection, user, conversation and
// reply ids; nothing logs frame payloads, tokens, URLs or message text.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Log text buffered while stdout is slower than the relay. */
const LOG_BUFFER_MAX_CHARS = 8 * 1024 * 1024;

export function createLogger(level: string, pretty = process.stdout.isTTY === true, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: undefined,
    // Belt and braces: no code path logs these, and if one ever does they come out redacted.
    redact: { paths: ['token', '*.token', 'headers.authorization', 'headers.cookie', 'url', '*.url'], censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  if (pretty) return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(options, stdoutLines());
}

/** Wait until what was logged has been handed to stdout, but never longer than `ms`: a reader that stopped reading is not waited for. */
export function flushLogs(log: Logger, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * JSON lines to stdout that neither a slow nor a dead reader can hold up.
 *
 * pino's own destination writes from libuv's thread pool and, at exit,
 * synchronously: with a reader that stopped reading (a full pipe) the thread
 * blocks, and the exit waits on it forever; the process stopped listening but
 * never exited. process.stdout on a pipe writes without blocking (libuv turns
 * the pipe non-blocking and waits for it on the event loop), and nothing waits
 * for it at exit. Lines of one turn of the event loop go out as one write;
 * while stdout is behind by the cap, new lines are dropped instead of growing
 * memory; once it is broken (EPIPE), logging stops.
 */
export class StdoutLines implements DestinationStream {
  private pending = '';
  private scheduled = false;
  private broken = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { writableLength: number } = process.stdout,
    private readonly maxChars = LOG_BUFFER_MAX_CHARS,
  ) {
    out.on('error', () => {
      this.broken = true;
      this.pending = '';
    });
  }

  write(line: string): void {
    if (this.broken || this.out.writableLength + this.pending.length + line.length > this.maxChars) return;
    this.pending += line;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  /** Hand what is pending to stdout now: at exit, a last non-blocking attempt. */
  readonly drain = (): void => {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = '';
    if (batch && !this.broken) this.out.write(batch);
  };

  /** Calls back once stdout has taken everything (pino's logger.flush); may never call back while the reader does not read. */
  flush(cb: (err?: Error) => void = () => undefined): void {
    this.drain();
    if (this.broken || this.out.writableLength === 0) return cb();
    const done = () => {
      this.out.off('drain', done);
      this.out.off('error', done);
      cb();
    };
    this.out.once('drain', done);
    this.out.once('error', done);
  }
}

let shared: StdoutLines | undefined;

/** One sink for the process: every logger writing to stdout shares its buffer (and its one error listener). */
function stdoutLines(): StdoutLines {
  if (!shared) {
    const sink = (shared = new StdoutLines());
    process.once('exit', sink.drain);
  }
  return shared;
}
