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
  // A synchronous write per line costs a syscall on every reply; asynchronous writes batch lines under load
  // (pino flushes what is left on exit), and a stalled stdout drops lines past the cap instead of growing.
  return pino(options, pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_MAX_CHARS }));
}
