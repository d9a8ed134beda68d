// The one pino logger. Child loggers carry connection, user, conversation and
// reply ids; nothing logs frame payloads, tokens, URLs or message text.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, pretty = process.stdout.isTTY === true, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: undefined,
    // Belt and braces: no code path logs these, and if one ever does they come out redacted.
    redact: { paths: ['token', '*.token', 'headers.authorization', 'headers.cookie', 'url', '*.url'], censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  return pino({ ...options, ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}) });
}
