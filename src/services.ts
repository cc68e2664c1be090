import type { Logger } from 'pino';
import { createAlertService, type AlertService } from './alerts/service.js';
import { createAccess, type Access } from './auth/access.js';
import type { EnvToken } from './auth/env-tokens.js';
import { createTokenService, type TokenService } from './auth/tokens.js';
import type { Clock } from './clock.js';
import type { AlertSettings } from './alerts/settings.js';
import { loadConfig, type Config } from './config.js';
import { createQueueService, type QueueService } from './tasks/queues.js';
import type { SchedulingSettings } from './tasks/scheduling.js';
import type { EventBus } from './events.js';
import type { Database, RawQuery } from './db/open.js';
import type { PrismaClient } from './generated/prisma/client.js';
import { createMonitor, type Monitor, type MonitorSettings } from './monitor/monitor.js';
import { createRetention, type PruneCounts, type Retention, type RetentionSettings } from './monitor/retention.js';
import { createEventFeed, type EventFeed } from './tasks/feed.js';
import { createLiveService, type LiveService } from './tasks/live.js';
import { createTaskService, type TaskService } from './tasks/service.js';
import { createCommit, type Commit } from './tasks/unit-of-work.js';
import { createStatsService, type StatsService } from './tasks/stats.js';
import type { RecordedChange } from './tasks/sql/record-change.js';
import type { SweepReport } from './monitor/sweep.js';
import type { DeliveryOutcome } from './alerts/delivery.js';

/** Everything the API works with; none of it knows about GraphQL. */
export interface Services {
  prisma: PrismaClient;
  clock: Clock;
  bus: EventBus;
  /** Runs a unit of work and announces its changes and alerts after it commits. */
  commit: Commit;
  tasks: TaskService;
  /** Per-kind limits and pause, and the queues' figures. */
  queues: QueueService;
  stats: StatsService;
  /** This instance's reader of the history, behind every live stream of task changes. */
  feed: EventFeed;
  live: LiveService;
  monitor: Monitor;
  /** The monitor's upkeep: counters folded, retention applied (started with the monitor). */
  retention: Retention;
  tokens: TokenService;
  access: Access;
  alerts: AlertService;
  /**
   * Starts what runs on its own: the token cache following token changes, the monitor, its upkeep (when
   * the monitor is on) and alert delivery. Building the services starts nothing (the event feed is lazy: it
   * reads nothing until a stream subscribes), so a one-shot command (the CLI on the database) builds them
   * the same way and never calls this.
   */
  start(): void;
  /** Stops what runs (what start() started, and the event feed), each service its own part; the bus and the database stay with whoever opened them. */
  stop(): Promise<void>;
}

export function createServices(deps: {
  prisma: PrismaClient;
  clock: Clock;
  bus: EventBus;
  monitor: MonitorSettings;
  /** Default: TASK_RETENTION off, HISTORY_RETENTION 30d. */
  retention?: RetentionSettings;
  log: Logger;
  envTokens?: EnvToken[];
  /** Failed authentications per client address per minute (AUTH_FAILURES_PER_MINUTE). */
  authFailuresPerMinute?: number;
  alerts?: AlertSettings;
  scheduling?: SchedulingSettings;
  /** PGlite: one statement at a time, so a claim needs no kind lock (see tasks/service.ts). */
  serialDatabase?: boolean;
  observe?: Observers;
  /** PROGRESS_HISTORY_INTERVAL in milliseconds (default 30 s). */
  progressHistoryIntervalMs?: number;
  /** The database driver for the progress statement, when there is one (PostgreSQL). */
  query?: RawQuery;
}): Services {
  const { prisma, clock, bus, log } = deps;
  const alerts = createAlertService({
    prisma,
    clock,
    settings: deps.alerts ?? defaultAlertSettings(),
    log: log.child({ component: 'alerts' }),
    onDelivery: deps.observe?.delivery,
  });
  const commit = createCommit({ prisma, bus, alerts, observe: deps.observe?.change });
  const scheduling = deps.scheduling ?? defaultSchedulingSettings();
  const tasks = createTaskService({
    prisma,
    clock,
    commit,
    bus,
    alerts,
    retryBackoff: scheduling.retryBackoff,
    serialDatabase: deps.serialDatabase,
    progressHistoryIntervalMs: deps.progressHistoryIntervalMs,
    query: deps.query,
  });
  const tokens = createTokenService({ prisma, clock, bus, envTokens: deps.envTokens });
  const feed = createEventFeed({ prisma, bus, log: log.child({ component: 'feed' }) });
  const monitor = createMonitor({
    prisma,
    commit,
    tasks,
    clock,
    bus,
    alerts,
    settings: deps.monitor,
    log: log.child({ component: 'monitor' }),
    onSweep: deps.observe?.sweep,
  });
  const retention = createRetention({
    prisma,
    clock,
    settings: deps.retention ?? defaultRetention(),
    intervalMs: deps.monitor.intervalMs,
    log: log.child({ component: 'retention' }),
    onPrune: deps.observe?.prune,
  });
  return {
    prisma,
    clock,
    bus,
    commit,
    tasks,
    queues: createQueueService({ prisma, clock }),
    stats: createStatsService({ prisma, clock, rules: () => monitor.rules() }),
    feed,
    live: createLiveService({ prisma, bus, tasks, feed }),
    monitor,
    retention,
    tokens,
    access: createAccess({ tokens, log, failuresPerMinute: deps.authFailuresPerMinute }),
    alerts,
    start() {
      tokens.start();
      monitor.start();
      if (deps.monitor.enabled) retention.start();
      alerts.start();
    },
    async stop() {
      await monitor.stop();
      await retention.stop();
      await alerts.stop();
      await feed.stop();
      await tokens.stop();
    },
  };
}

/**
 * The services as the configuration sets them, over an open database: the one way the server and the
 * CLI's direct-database mode build them (the CLI never starts them).
 */
export function configuredServices(
  config: Config,
  { db, bus, clock, log, observe }: { db: Database; bus: EventBus; clock: Clock; log: Logger; observe?: Observers },
): Services {
  return createServices({
    prisma: db.prisma,
    query: db.query,
    serialDatabase: db.provider === 'pglite',
    clock,
    bus,
    log,
    observe,
    monitor: config.monitor,
    retention: config.retention,
    envTokens: config.envTokens,
    authFailuresPerMinute: config.limits.authFailuresPerMinute,
    alerts: config.alerts,
    scheduling: config.scheduling,
    progressHistoryIntervalMs: config.progressHistoryIntervalMs,
  });
}

/** Hooks for metrics: what this instance itself did. */
export interface Observers {
  change?: (change: RecordedChange) => void;
  sweep?: (report: SweepReport) => void;
  delivery?: (outcome: DeliveryOutcome) => void;
  prune?: (counts: PruneCounts) => void;
}

/** Alerting as configured with no ALERT_* setting: no webhook; alerts are still recorded, queryable, and sent to subscribers. */
export const defaultAlertSettings = (): AlertSettings => loadConfig({}).alerts;

/** Retention as configured with no setting. */
export const defaultRetention = (): RetentionSettings => loadConfig({}).retention;

/** Scheduling with no RETRY_BACKOFF or KIND_LIMITS set. */
export const defaultSchedulingSettings = (): SchedulingSettings => loadConfig({}).scheduling;
