import { readFileSync } from 'node:fs';
import ms from 'ms';
import { z } from 'zod';
import { envTokensExpected, parseEnvTokens, type EnvToken } from './auth/env-tokens.js';
import { alertRules, webhookFormats, type AlertSettings, type WebhookConfig, type WebhookFormat } from './alerts/settings.js';
import type { MonitorSettings } from './monitor/monitor.js';
import { stuckActions } from './tasks/stuck.js';
import { parseDuration } from './duration.js';
import { parseBackoff, type SchedulingSettings } from './tasks/scheduling.js';
import { TaskwardenError } from './errors.js';
import type { RetentionSettings } from './monitor/retention.js';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** JSON lines for machines; short coloured lines for a person at a terminal. */
export const logFormats = ['json', 'pretty'] as const;

const duration = (example: string) =>
  z.string().transform((text, ctx) => {
    const value = parseDuration(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as ${example}, 90s or 1h` });
      return z.NEVER;
    }
    return value;
  });

/** A duration, or `off` for never. */
const durationOrOff = (example: string) =>
  z.string().transform((text, ctx) => {
    if (text.trim().toLowerCase() === 'off') return null;
    const value = parseDuration(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as ${example} or 90d, or off` });
      return z.NEVER;
    }
    return value;
  });

const boolean = z.string().transform((text, ctx) => {
  const value = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false }[text.trim().toLowerCase()];
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected true or false' });
    return z.NEVER;
  }
  return value;
});

const positiveInt = (example: number) =>
  z.coerce
    .number({ message: `expected a whole number such as ${example}` })
    .int(`expected a whole number such as ${example}`)
    .positive(`expected a whole number such as ${example}`);

const envTokens = z.string().transform((text, ctx) => {
  const tokens = parseEnvTokens(text);
  if (tokens) return tokens;
  ctx.addIssue({ code: 'custom', message: envTokensExpected });
  return z.NEVER;
});

const list = (text: string) =>
  text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

const origins = z.string().transform((text, ctx) => {
  const parsed: string[] = [];
  for (const entry of list(text)) {
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      // reported below
    }
    if (!origin || origin === 'null' || entry.replace(/\/$/, '') !== origin) {
      ctx.addIssue({
        code: 'custom',
        message: `expected origins such as https://ops.example.com or http://localhost:5173, separated by commas (got ${entry})`,
      });
      return z.NEVER;
    }
    parsed.push(origin);
  }
  return parsed;
});

const hostNames = z.string().transform((text, ctx) => {
  const parsed: string[] = [];
  for (const entry of list(text)) {
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(entry)) {
      ctx.addIssue({ code: 'custom', message: `expected host names such as taskwarden.internal or 10.0.0.5:4000, separated by commas (got ${entry})` });
      return z.NEVER;
    }
    parsed.push(entry.toLowerCase());
  }
  return parsed;
});

const webhookEntry = z.object({
  url: z.string().regex(/^https?:\/\/.+/, 'expected an http(s) URL'),
  format: z.enum(webhookFormats).default('json'),
  rules: z.array(z.enum(alertRules)).optional(),
  kinds: z.array(z.string().min(1)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

const webhookUrls = z.string().transform((text, ctx) => {
  const hooks: WebhookConfig[] = [];
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const match = /^(?:(json|slack|feishu)=)?(https?:\/\/\S+)$/.exec(entry);
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'expected http(s) URLs separated by commas, each optionally prefixed with slack= or feishu=' });
      return z.NEVER;
    }
    hooks.push({ url: match[2]!, format: (match[1] as WebhookFormat | undefined) ?? 'json' });
  }
  return hooks;
});

const retryBackoff = z.string().transform((text, ctx) => {
  const parsed = parseBackoff(text, parseDuration);
  if (!parsed) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected initial delay, factor and cap separated by commas, such as 30s,2,30m (factor from 1 to 100, cap at least the initial delay)',
    });
    return z.NEVER;
  }
  return parsed;
});

const kindLimits = z.string().transform((text, ctx) => {
  const limits: Record<string, number> = {};
  for (const entry of list(text)) {
    const match = /^(.+):(\d{1,6})$/.exec(entry);
    if (!match || match[1]!.trim() === '' || match[1]!.length > 100) {
      ctx.addIssue({ code: 'custom', message: `expected kind:limit entries separated by commas, such as backtest:8,optimize:2 (got ${entry})` });
      return z.NEVER;
    }
    limits[match[1]!.trim()] = Number(match[2]);
  }
  return limits;
});

const alertConfigFile = z.string().transform((path, ctx) => {
  try {
    const parsed = z.object({ webhooks: z.array(webhookEntry) }).safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success) return parsed.data.webhooks as WebhookConfig[];
    const issue = parsed.error.issues[0]!;
    ctx.addIssue({ code: 'custom', message: `${path}: ${issue.path.join('.')}: ${issue.message}` });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `could not read ${path} as JSON (${(error as Error).message})` });
  }
  return z.NEVER;
});

/** Every setting the server reads, by variable name (docs/configuration.md lists each; a test holds the two together). */
export const envSchema = z.object({
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
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/.+/, 'expected a redis:// or rediss:// URL')
    .optional(),
  MONITOR_ENABLED: boolean.default(true),
  MONITOR_INTERVAL: duration('30m').default(ms('15s')),
  HEARTBEAT_TIMEOUT: duration('2m').default(ms('2m')),
  STALL_TIMEOUT: duration('60m').default(ms('60m')),
  /** The old name of STALL_TIMEOUT, from when one timeout served both rules. */
  STUCK_TIMEOUT: duration('60m').optional(),
  MONITOR_ACTION: z.enum(stuckActions, { message: `expected one of ${stuckActions.join(', ')}` }).default('cancel'),
  SHUTDOWN_TIMEOUT: duration('10s').default(ms('10s')),
  TASK_RETENTION: durationOrOff('365d').default(null),
  HISTORY_RETENTION: durationOrOff('30d').default(ms('30d')),
  PROGRESS_HISTORY_INTERVAL: duration('30s').default(ms('30s')),
  DATABASE_POOL_SIZE: positiveInt(10).default(10),
  LOG_LEVEL: z.enum(logLevels, { message: `expected one of ${logLevels.join(', ')}` }).default('info'),
  LOG_FORMAT: z.enum(logFormats, { message: `expected one of ${logFormats.join(', ')}` }).optional(),
  NODE_ENV: z.string().optional(),
  TASKWARDEN_TOKENS: envTokens.default([]),
  GRAPHQL_INTROSPECTION: boolean.optional(),
  MAX_QUERY_DEPTH: positiveInt(6).default(6),
  MAX_QUERY_COST: positiveInt(5000).default(5000),
  MAX_ALIASES: positiveInt(15).default(15),
  MAX_DIRECTIVES: positiveInt(50).default(50),
  MAX_TOKENS: positiveInt(1000).default(1000),
  MAX_BODY_BYTES: positiveInt(2_097_152).default(2 * 1024 * 1024),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt(20).default(20),
  // Workers usually share one token and each holds a connection: room for a fleet, still a bound.
  MAX_CONNECTIONS_PER_TOKEN: positiveInt(200).default(200),
  SUBSCRIPTION_BUFFER: positiveInt(1000).default(1000),
  // Behind a reverse proxy every connection comes from the proxy's address: raise it there.
  MAX_CONNECTIONS_PER_ADDRESS: positiveInt(500).default(500),
  // Open mode (no token) serves loopback only: a bench, or a room of dashboards on one machine, must fit.
  MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS: positiveInt(10000).default(10_000),
  HEADERS_TIMEOUT: duration('20s').default(ms('20s')),
  REQUEST_TIMEOUT: duration('60s').default(ms('60s')),
  CORS_ORIGINS: origins.default([]),
  ALLOWED_HOSTS: hostNames.default([]),
  METRICS_PORT: z.coerce
    .number({ message: 'expected a port number' })
    .int('expected a whole port number')
    .min(0, 'expected a port from 0 to 65535')
    .max(65535, 'expected a port from 0 to 65535')
    .optional(),
  AUTH_FAILURES_PER_MINUTE: positiveInt(30).default(30),
  ALERT_WEBHOOK_URLS: webhookUrls.default([]),
  ALERT_CONFIG: alertConfigFile.optional(),
  ALERT_BURST_COUNT: positiveInt(5).default(5),
  ALERT_BURST_WINDOW: duration('10m').default(ms('10m')),
  ALERT_SWEEP_FAILURES: positiveInt(3).default(3),
  ALERT_PENDING_AFTER: duration('2h').optional(),
  ALERT_MAX_ATTEMPTS: positiveInt(8).default(8),
  ALERT_RETRY_BASE: duration('2s').default(ms('2s')),
  ALERT_POLL_INTERVAL: duration('5s').default(ms('5s')),
  RETRY_BACKOFF: retryBackoff.default({ initialSeconds: 30, factor: 2, maxSeconds: 30 * 60 }),
  KIND_LIMITS: kindLimits.default({}),
});

/** Bounds on what one request or one client may cost the server. */
export interface Limits {
  depth: number;
  cost: number;
  aliases: number;
  directives: number;
  tokens: number;
  bodyBytes: number;
  subscriptionsPerConnection: number;
  connectionsPerToken: number;
  /** Events a slow subscriber may fall behind before its subscription is ended. */
  subscriptionBuffer: number;
  /** Open TCP connections from one client address (HTTP keep-alive, SSE and WebSocket alike). */
  connectionsPerAddress: number;
  /** Live connections without a token (open mode) from one address; a loopback address may also hold this many TCP connections. */
  anonymousConnectionsPerAddress: number;
  /** Time a client has to send a request's headers, and the whole request, in milliseconds. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Failed authentications one client address may make per minute before it gets RATE_LIMITED. */
  authFailuresPerMinute: number;
}

/** Which web pages may use the API, and under which host names (see docs/security.md). */
export interface BrowserAccess {
  /** Other origins allowed to call the API from a browser (CORS, WebSocket, SSE); the server's own always is. */
  corsOrigins: string[];
  /** Host names an open (tokenless) server answers to besides loopback ones: against DNS rebinding. */
  allowedHosts: string[];
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
  /** What the monitor prunes, and `taskwarden prune`. */
  retention: RetentionSettings;
  shutdownTimeoutMs: number;
  /** One PROGRESS history entry per task at most this often, plus one per change of message; the live stream carries every report. */
  progressHistoryIntervalMs: number;
  /** Connections to a PostgreSQL server (the embedded database has one). */
  databasePoolSize: number;
  logLevel: (typeof logLevels)[number];
  /** Unset: pretty when stdout is a terminal, JSON otherwise. */
  logFormat?: (typeof logFormats)[number];
  /** Tokens given in the environment (TASKWARDEN_TOKENS). */
  envTokens: EnvToken[];
  /** Introspection and field suggestions; off by default when NODE_ENV=production. */
  introspection: boolean;
  limits: Limits;
  browser: BrowserAccess;
  /** Serve /metrics on this port of its own (same HOST), without a token, instead of on the API port. */
  metricsPort?: number;
  alerts: AlertSettings;
  scheduling: SchedulingSettings;
  /** One line each, for the log at start: deprecated settings still honoured. */
  warnings: string[];
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
      heartbeatTimeoutMs: e.HEARTBEAT_TIMEOUT,
      // The old name applies only where the new one was not given.
      stallTimeoutMs: present.STALL_TIMEOUT === undefined && e.STUCK_TIMEOUT !== undefined ? e.STUCK_TIMEOUT : e.STALL_TIMEOUT,
      action: e.MONITOR_ACTION,
    },
    retention: { taskRetentionMs: e.TASK_RETENTION, historyRetentionMs: e.HISTORY_RETENTION },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT,
    progressHistoryIntervalMs: e.PROGRESS_HISTORY_INTERVAL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    envTokens: e.TASKWARDEN_TOKENS,
    introspection: e.GRAPHQL_INTROSPECTION ?? e.NODE_ENV !== 'production',
    limits: {
      depth: e.MAX_QUERY_DEPTH,
      cost: e.MAX_QUERY_COST,
      aliases: e.MAX_ALIASES,
      directives: e.MAX_DIRECTIVES,
      tokens: e.MAX_TOKENS,
      bodyBytes: e.MAX_BODY_BYTES,
      subscriptionsPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      connectionsPerToken: e.MAX_CONNECTIONS_PER_TOKEN,
      subscriptionBuffer: e.SUBSCRIPTION_BUFFER,
      connectionsPerAddress: e.MAX_CONNECTIONS_PER_ADDRESS,
      anonymousConnectionsPerAddress: e.MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS,
      headersTimeoutMs: e.HEADERS_TIMEOUT,
      requestTimeoutMs: e.REQUEST_TIMEOUT,
      authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,
    },
    browser: { corsOrigins: e.CORS_ORIGINS, allowedHosts: e.ALLOWED_HOSTS },
    metricsPort: e.METRICS_PORT,
    alerts: {
      webhooks: [...e.ALERT_WEBHOOK_URLS, ...(e.ALERT_CONFIG ?? [])],
      burstCount: e.ALERT_BURST_COUNT,
      burstWindowMs: e.ALERT_BURST_WINDOW,
      sweepFailures: e.ALERT_SWEEP_FAILURES,
      pendingAfterMs: e.ALERT_PENDING_AFTER,
      maxAttempts: e.ALERT_MAX_ATTEMPTS,
      retryBaseMs: e.ALERT_RETRY_BASE,
      pollIntervalMs: e.ALERT_POLL_INTERVAL,
    },
    scheduling: { retryBackoff: e.RETRY_BACKOFF, kindLimits: e.KIND_LIMITS },
    warnings: e.STUCK_TIMEOUT === undefined ? [] : [stuckTimeoutWarning(present.STALL_TIMEOUT !== undefined)],
  };
}

function stuckTimeoutWarning(ignored: boolean): string {
  return ignored
    ? 'STUCK_TIMEOUT is deprecated and ignored, since STALL_TIMEOUT is set; remove it.'
    : 'STUCK_TIMEOUT is deprecated: it now sets STALL_TIMEOUT (NO_PROGRESS) only; rename it. Silence is judged by HEARTBEAT_TIMEOUT (default 2m).';
}
