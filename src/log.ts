import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger } from 'pino';

export type { Logger };

/** The request being served, so every log line written while serving it names it. */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

/**
 * Structured JSON logs; readable lines when attached to a terminal. Lines
 * written while serving a request carry its `requestId` (also sent back in
 * the `x-request-id` header and in error extensions).
 * `destination` lets tests and tools capture or silence them.
 */
export function createLogger(level: string, options: { pretty?: boolean; destination?: pino.DestinationStream } = {}): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY && !options.destination);
  const mixin = () => {
    const store = requestContext.getStore();
    return store ? { requestId: store.requestId } : {};
  };
  if (pretty) {
    return pino({ level, mixin, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } });
  }
  return pino({ level, mixin }, options.destination);
}
