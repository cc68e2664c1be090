import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { databaseTarget, openDatabase, type Database } from '../db/open.js';
import { createEventBus } from '../events.js';
import type { Logger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { createServices, type Services } from '../services.js';
import { createApp, type App } from './app.js';

export { databaseTarget };

export interface Taskwarden {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  app: App;
  db: Database;
  services: Services;
  /** Drains: stop accepting, close subscriptions, finish in-flight requests, stop the monitor, close the database. */
  stop(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  /** An open database to use instead of the configured one; the caller keeps it (stop() leaves it open). */
  db?: Database;
  /** The built dashboard to serve at `/`. Default: web/dist. */
  dashboardDir?: string;
}

/** Starts the whole service: database (migrated), services, HTTP + WebSocket API, monitor. */
export async function startTaskwarden({ config, log, clock = systemClock, ...options }: StartOptions): Promise<Taskwarden> {
  const ownsDb = !options.db;
  const db = options.db ?? (await openDatabase(databaseTarget(config)));
  if (db.applied.length) log.info({ migrations: db.applied }, 'applied database migrations');
  const metrics = createMetrics();
  const bus = createEventBus({ redisUrl: config.redisUrl, bufferSize: config.limits.subscriptionBuffer });
  const services = createServices({
    prisma: db.prisma,
    clock,
    bus,
    monitor: config.monitor,
    log,
    envTokens: config.envTokens,
    authFailuresPerMinute: config.limits.authFailuresPerMinute,
    alerts: config.alerts,
    observe: metrics.observers,
  });
  const app = createApp({
    services,
    log,
    metrics,
    limits: config.limits,
    introspection: config.introspection,
    dashboardDir: options.dashboardDir,
    ready: async () => (await db.ready()) && (!config.monitor.enabled || services.monitor.status().running),
  });
  let url: string;
  try {
    await services.access.decideMode(config.host);
    url = await app.start(config.port, config.host);
  } catch (error) {
    await bus.close();
    if (ownsDb) await db.close();
    throw error;
  }
  services.monitor.start();
  services.alerts.start();
  log.info({ url, database: `${db.provider} ${db.location}`, events: config.redisUrl ? 'redis' : 'in-process' }, 'Taskwarden is listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    app,
    db,
    services,
    stop() {
      stopping ??= (async () => {
        await app.stop(config.shutdownTimeoutMs);
        await services.monitor.stop();
        await services.alerts.stop();
        await bus.close();
        if (ownsDb) await db.close();
      })();
      return stopping;
    },
  };
}
