import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

export type { Logger };

/** The request being served, so every log line written while serving it names it. */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

export interface LoggerOptions {
  /** `pretty`: short coloured lines for a person; `json`: pino's JSON lines. Default: pretty on a terminal. */
  format?: 'json' | 'pretty';
  /** Where the lines go (JSON); lets tests and tools capture or silence them. */
  destination?: pino.DestinationStream;
}

/**
 * Structured logs: JSON lines for machines, short readable lines for a person at a terminal. Lines written
 * while serving a request carry its `requestId` (also sent back in the `x-request-id` header and in error
 * extensions).
 */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const mixin = () => {
    const store = requestContext.getStore();
    return store ? { requestId: store.requestId } : {};
  };
  if (isPretty(options)) {
    // In this thread rather than as a pino transport: no worker thread to start, and lines keep their order with stdout.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true, sync: true });
    return pino({ level, mixin }, stream);
  }
  return pino({ level, mixin }, options.destination);
}

export const isPretty = (options: LoggerOptions) => (options.format ?? (process.stdout.isTTY && !options.destination ? 'pretty' : 'json')) === 'pretty';
