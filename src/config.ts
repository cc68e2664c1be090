import ms from 'ms';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { TaskwardenError } from './errors.js';

export const stuckActions = ['cancel', 'fail', 'retry', 'none'] as const;
/** What the monitor does with a stuck task. */
export type StuckAction = (typeof stuckActions)[number];

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Parses `30m`, `90s`, `1h` into milliseconds (re-exported from duration.ts, where it lives apart from zod). */
export { parseDuration };

const duration = (example: string) =>
  z.string().transform((text, ctx) => {
    const value = parseDuration(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as ${example}, 90s or 1h` });
      return z.NEVER;
    }
    return value;
  });

const boolean = z
  .string()
  .transform((text, ctx) => {
    const value = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false }[text.trim().toLowerCase()];
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected true or false' });
      return z.NEVER;
    }
    return value;
  });

const envSchema = z.object({
  PORT: z.coerce
    .number({ message: 'expected a port number' })
    .int('expected a whole port number')
    .min(0, 'expected a port from 0 to 65535')
    .max(65535, 'expected a port from 0 to 65535')
    .default(4000),
  HOST: z.string().min(1, 'expected a host name or address').default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, 'expected a postgres:// or postgresql:// URL (leave it unset for the embedded database)')
    .optional(),
  DATA_DIR: z.string().min(1, 'expected a folder path').default('./data'),
  REDIS_URL: z.string().regex(/^rediss?:\/\/.+/, 'expected a redis:// or rediss:// URL').optional(),
  MONITOR_ENABLED: boolean.default(true),
  MONITOR_INTERVAL: duration('30m').default(ms('30m')),
  STUCK_TIMEOUT: duration('60m').default(ms('60m')),
  MONITOR_ACTION: z.enum(stuckActions, { message: `expected one of ${stuckActions.join(', ')}` }).default('cancel'),
  SHUTDOWN_TIMEOUT: duration('10s').default(ms('10s')),
  LOG_LEVEL: z.enum(logLevels, { message: `expected one of ${logLevels.join(', ')}` }).default('info'),
});

export interface MonitorSettings {
  enabled: boolean;
  /** Time between sweeps, in milliseconds (jittered by up to 10%). */
  intervalMs: number;
  /** How long without a heartbeat or without progress makes a running task stuck, in milliseconds. */
  stuckTimeoutMs: number;
  action: StuckAction;
}

export interface Config {
  port: number;
  host: string;
  /** A PostgreSQL server; when absent, the embedded database in `dataDir` is used. */
  databaseUrl?: string;
  dataDir: string;
  /** Shares live updates between instances; when absent, they stay in-process. */
  redisUrl?: string;
  monitor: MonitorSettings;
  shutdownTimeoutMs: number;
  logLevel: (typeof logLevels)[number];
}

/**
 * Reads the configuration from the environment once. A bad value throws a
 * CONFIG_INVALID error whose message names the variable and what it expects.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    throw new TaskwardenError('CONFIG_INVALID', `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    monitor: {
      enabled: e.MONITOR_ENABLED,
      intervalMs: e.MONITOR_INTERVAL,
      stuckTimeoutMs: e.STUCK_TIMEOUT,
      action: e.MONITOR_ACTION,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT,
    logLevel: e.LOG_LEVEL,
  };
}
