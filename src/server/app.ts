import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, useReadinessCheck, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { maskError, useInputErrorCodes } from '../graphql/errors.js';
import { schema, type Context } from '../graphql/index.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { createDashboardHandler } from './dashboard.js';

export const GRAPHQL_PATH = '/graphql';

export interface AppOptions {
  services: Services;
  log: Logger;
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
   * code 1001, SSE streams completed), let in-flight requests finish (up to
   * `timeoutMs`, then cut them off).
   */
  stop(timeoutMs?: number): Promise<void>;
}

/** The HTTP and WebSocket front of the API. Owns no data: services and the database are the caller's. */
export function createApp({ services, log, ready, dashboardDir }: AppOptions): App {
  const yogaLog = log.child({ component: 'graphql' });
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: '/health',
    landingPage: false,
    graphiql: { title: 'Taskwarden', subscriptionsProtocol: 'WS' },
    context: (): Context => ({ services, verdicts: new WeakMap() }),
    maskedErrors: { maskError: (error, message) => maskError(error, message) },
    logging: {
      debug: (...args) => yogaLog.debug(args.length === 1 ? args[0] : args),
      info: (...args) => yogaLog.info(args.length === 1 ? args[0] : args),
      warn: (...args) => yogaLog.warn(args.length === 1 ? args[0] : args),
      error: (...args) => yogaLog.error(args.length === 1 ? args[0] : args),
    },
    plugins: [
      useInputErrorCodes(),
      useReadinessCheck({ endpoint: '/ready', check: async () => (ready ? ready() : true) }),
    ],
  });

  const dashboard = createDashboardHandler({ dir: dashboardDir, fallback: yoga, log });
  const server = createServer((req, res) => (isApiPath(req.url) ? yoga(req, res) : dashboard(req, res)));
  const sockets = new WebSocketServer({ server, path: GRAPHQL_PATH });

  // graphql-ws over the same path, through yoga's envelop, so WebSocket
  // operations get the same context, plugins and error masking as HTTP.
  useServer<Record<string, unknown>, { request: IncomingMessage }>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onSubscribe: async (ctx, _id, payload) => {
        const enveloped = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params: payload });
        let document;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          return [maskError(error, 'Unexpected error.') as GraphQLError];
        }
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length > 0) return errors.map((error: GraphQLError) => maskError(error, 'Unexpected error.') as GraphQLError);
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
        return args;
      },
    },
    sockets,
  );

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
      for (const client of sockets.clients) client.close(1001, 'Server shutting down');
      sockets.close();
      services.bus.endSubscriptions();
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      if ((await Promise.race([closed, timedOut])) === 'timeout') {
        log.warn({ timeoutMs }, 'in-flight requests did not finish in time; closing their connections');
        server.closeAllConnections();
        for (const client of sockets.clients) client.terminate();
        await closed;
      }
      clearTimeout(timer);
    },
  };
}

// Everything else is the dashboard's (GET and HEAD; other methods get yoga's 404).
const API_PATHS = [GRAPHQL_PATH, '/health', '/ready'];
function isApiPath(url = '/'): boolean {
  const path = url.split('?', 1)[0]!;
  return API_PATHS.some((api) => path === api || path.startsWith(`${api}/`));
}

type Enveloped = ReturnType<YogaServerInstance<Record<string, unknown>, Context>['getEnveloped']>;
