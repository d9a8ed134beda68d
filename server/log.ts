// The one pino logger. Child loggers carry connection, user, conversation and
// reply ids; nothing logs frame payloads, tokens or message text.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger {
  return pino({
    level,
    base: undefined,
    redact: { paths: ['token', '*.token', 'headers.authorization', 'req.url'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
