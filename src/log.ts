import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs; readable lines when attached to a terminal.
 * `destination` lets tests and tools capture or silence them.
 */
export function createLogger(level: string, options: { pretty?: boolean; destination?: pino.DestinationStream } = {}): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY && !options.destination);
  if (pretty) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } });
  }
  return pino({ level }, options.destination);
}
