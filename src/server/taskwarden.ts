import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { databaseTarget, openDatabase, type Database } from '../db/open.js';
import { createEventBus } from '../events.js';
import type { Logger } from '../log.js';
import { createMetrics, serveMetrics } from '../metrics.js';
import { configuredServices, type Services } from '../services.js';
import { createApp, type App } from './app.js';

export interface Taskwarden {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  /** False while no API token exists (allowed only on loopback): then every request may do everything. */
  tokensRequired: boolean;
  app: App;
  /** Where /metrics is served when METRICS_PORT is set (otherwise at the API's /metrics). */
  metricsUrl?: string;
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
  const bus = createEventBus({ redisUrl: config.redisUrl, bufferSize: config.limits.subscriptionBuffer, log: log.child({ component: 'events' }) });
  const services = configuredServices(config, { db, bus, clock, log, observe: metrics.observers });
  await services.queues.applyLimits(config.scheduling.kindLimits);
  const app = createApp({
    services,
    log,
    metrics,
    limits: config.limits,
    browser: config.browser,
    metricsPort: config.metricsPort,
    introspection: config.introspection,
    dashboardDir: options.dashboardDir,
    ready: async () => (await db.ready()) && (!config.monitor.enabled || services.monitor.status().running),
  });
  let url: string;
  let tokensRequired: boolean;
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  // Before the mode is decided and the first request comes: the token cache hears changes from then on.
  services.start();
  try {
    tokensRequired = await services.access.decideMode(config.host);
    url = await app.start(config.port, config.host);
    if (config.metricsPort !== undefined) metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.host);
  } catch (error) {
    if (app.server.listening) await app.stop(0);
    await services.stop();
    await bus.close();
    if (ownsDb) await db.close();
    throw error;
  }
  log.debug(
    {
      url,
      metrics: metricsServer?.url ?? url.replace(/\/graphql$/, '/metrics'),
      database: `${db.provider} ${db.location}`,
      events: config.redisUrl ? 'redis' : 'in-process',
    },
    'Taskwarden is listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    url,
    tokensRequired,
    app,
    metricsUrl: metricsServer?.url,
    db,
    services,
    stop() {
      stopping ??= (async () => {
        await app.stop(config.shutdownTimeoutMs);
        await metricsServer?.close();
        await services.stop();
        await bus.close();
        if (ownsDb) await db.close();
      })();
      return stopping;
    },
  };
}
