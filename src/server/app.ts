import { createServer, type Server } from 'node:http';
import { closeConnectionsWhenDraining } from './drain.js';
import type { AddressInfo } from 'node:net';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { BrowserAccess, Limits } from '../config.js';
import { maskError } from '../graphql/errors.js';
import { schema, type Context } from '../graphql/index.js';
import { requestContext, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Services } from '../services.js';
import { limitConnectionsPerAddress } from './address-limit.js';
import { createBrowserAccess } from './browser-access.js';
import { closeOnTokenChange, createConnectionRegistry } from './connections.js';
import { createRequestAuth } from './context.js';
import { createDashboardHandler } from './dashboard.js';
import { GRAPHQL_PATH, isApiPath } from './paths.js';
import { apiPlugins } from './plugins.js';
import { requestIdOf } from './request-id.js';
import { serveWebSockets } from './websocket.js';

export { GRAPHQL_PATH, METRICS_PATH } from './paths.js';

export interface AppOptions {
  services: Services;
  log: Logger;
  metrics: Metrics;
  limits: Limits;
  /** Which other web origins may use the API, and which host names an open server answers to. */
  browser?: BrowserAccess;
  /** When set, /metrics is served on this port (see startMetrics) and not on the API's. */
  metricsPort?: number;
  /** Introspection, field suggestions and GraphiQL; off in production unless enabled. */
  introspection: boolean;
  /** Readiness beyond "the process runs": database reachable and migrated, monitor scheduled. */
  ready?: () => Promise<boolean>;
  /** The built dashboard, served at `/`. Default: web/dist of this package (`npm run build:web`). */
  dashboardDir?: string;
}

export interface App {
  server: Server;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  /** Listens; port 0 picks a free one. Resolves to the URL of the GraphQL endpoint. */
  start(port: number, host?: string): Promise<string>;
  /**
   * Shuts down in order: stop accepting, close subscriptions (WebSocket close
   * code 1001, so clients reconnect elsewhere; SSE streams completed), let
   * in-flight requests finish (up to `timeoutMs`, then cut them off).
   */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * The HTTP and WebSocket front of the API: composes the auth context (context.ts), yoga and its
 * plugins (plugins.ts), graphql-ws (websocket.ts) and the dashboard, and owns start and stop.
 * Owns no data: services and the database are the caller's.
 */
export function createApp({ services, log, metrics, limits, browser, metricsPort, introspection, ready, dashboardDir }: AppOptions): App {
  const yogaLog = log.child({ component: 'graphql' });
  const connections = createConnectionRegistry({ maxPerToken: limits.connectionsPerToken, maxAnonymousPerAddress: limits.anonymousConnectionsPerAddress });
  const guard = createBrowserAccess(browser ?? { corsOrigins: [], allowedHosts: [] });
  const auth = createRequestAuth({ services, guard, connections });

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: '/health',
    landingPage: false,
    batching: false,
    cors: guard.cors(),
    graphiql: introspection ? { title: 'Taskwarden', subscriptionsProtocol: 'WS' } : false,
    context: auth.context,
    maskedErrors: { maskError: (error, message) => maskError(error, message) },
    logging: {
      debug: (...args) => yogaLog.debug(args.length === 1 ? args[0] : args),
      info: (...args) => yogaLog.info(args.length === 1 ? args[0] : args),
      warn: (...args) => yogaLog.warn(args.length === 1 ? args[0] : args),
      error: (...args) => yogaLog.error(args.length === 1 ? args[0] : args),
    },
    plugins: apiPlugins({ services, log, metrics, limits, guard, auth, metricsPort, introspection, ready }),
  });

  metrics.watch(services, () => connections.size);

  // Each request runs in its own log context, so every line written for it (errors included) names it.
  const dashboard = createDashboardHandler({ dir: dashboardDir, fallback: yoga, log });
  const server = createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs }, (req, res) => {
    requestContext.run({ requestId: requestIdOf(req) }, () => (isApiPath(req.url) ? yoga(req, res) : dashboard(req, res)));
  });
  // A loopback address may hold as many as its anonymous (open-mode) live connections may number.
  limitConnectionsPerAddress(
    server,
    { max: limits.connectionsPerAddress, loopbackMax: Math.max(limits.connectionsPerAddress, limits.anonymousConnectionsPerAddress) },
    log,
  );
  const drain = closeConnectionsWhenDraining(server);
  const sockets = serveWebSockets({ server, yoga, authenticate: auth.authenticate, connections, guard, limits });
  const stopClosingRevoked = closeOnTokenChange(services.bus, connections);

  return {
    server,
    yoga,
    start(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve(`http://${shown}:${address.port}${GRAPHQL_PATH}`);
        });
      });
    },
    async stop(timeoutMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      sockets.close();
      // This app's own streams and bus subscription only: the services' own (the token cache's) are theirs to stop.
      auth.endStreams();
      await stopClosingRevoked();
      drain();
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      if ((await Promise.race([closed, timedOut])) === 'timeout') {
        log.warn({ timeoutMs }, 'in-flight requests did not finish in time; closing their connections');
        server.closeAllConnections();
        sockets.terminate();
        await closed;
      }
      clearTimeout(timer);
    },
  };
}
