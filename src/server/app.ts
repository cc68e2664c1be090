import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import { unauthenticated } from '../auth/access.js';
import { actorOf, can, tokenNameOf, type Principal } from '../auth/roles.js';
import type { BrowserAccess, Limits } from '../config.js';
import { TaskwardenError } from '../errors.js';
import { maskError, useInputErrorCodes } from '../graphql/errors.js';
import { schema, type Context } from '../graphql/index.js';
import { requestContext, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { REST_PREFIX, useRestApi } from '../rest/api.js';
import type { Services } from '../services.js';
import { limitConnectionsPerAddress } from './address-limit.js';
import { createBrowserAccess } from './browser-access.js';
import { createConnectionRegistry, endable } from './connections.js';
import { createDashboardHandler } from './dashboard.js';
import { useFieldRepeatLimit } from './field-repeats.js';
import { useRequestLimits } from './request-limits.js';

export const GRAPHQL_PATH = '/graphql';
export const METRICS_PATH = '/metrics';
/** How often one field may repeat within a selection set (repeats merge, so more is never needed). */
const MAX_FIELD_REPEATS = 3;

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

type SocketExtra = {
  request: IncomingMessage;
  socket: WebSocket;
};

/** The HTTP and WebSocket front of the API. Owns no data: services and the database are the caller's. */
export function createApp({ services, log, metrics, limits, browser, metricsPort, introspection, ready, dashboardDir }: AppOptions): App {
  const yogaLog = log.child({ component: 'graphql' });
  const connections = createConnectionRegistry({ maxPerPrincipal: limits.connectionsPerToken });
  const guard = createBrowserAccess(browser ?? { corsOrigins: [], allowedHosts: [] });

  /** Who is calling; an open (tokenless) server answers only to the host names it may be reached by. */
  const authenticate = async (authorization: unknown, headers: Headers | IncomingMessage['headers'], address: string | undefined): Promise<Principal> => {
    const principal = await services.access.authenticate(authorization, address);
    if (principal.source === 'open' && !guard.openHostAllowed(headers)) {
      throw new TaskwardenError(
        'FORBIDDEN',
        'This server has no API token, so it answers only to loopback host names (localhost, 127.0.0.1, [::1]) and those in ALLOWED_HOSTS.',
      );
    }
    return principal;
  };
  // HTTP requests are authenticated before anything is parsed or measured (see useAdmission).
  const admitted = new WeakMap<Request, Principal>();

  const context = async (initial: Record<string, unknown>): Promise<Context> => {
    const socket = initial.socket as WebSocket | undefined;
    const request = initial.request as Request;
    const principal =
      (initial.principal as Principal | undefined) ??
      admitted.get(request) ??
      (await authenticate(request.headers.get('authorization'), request.headers, (initial.req as IncomingMessage | undefined)?.socket.remoteAddress).catch(
        (error: unknown) => {
          throw asHttpError(error);
        },
      ));
    return {
      services,
      principal,
      actor: actorOf(principal),
      tokenName: tokenNameOf(principal),
      verdicts: new WeakMap(),
      // A WebSocket was registered when it connected; an SSE stream is a connection of its own.
      live: (source) => {
        if (socket) return source;
        let release = () => {};
        const { iterator, end } = endable(source, () => release());
        try {
          release = connections.add(principal, (reason) => end(unauthenticated(reason)));
        } catch (error) {
          void iterator.return?.();
          throw asHttpError(error);
        }
        return iterator;
      },
    };
  };

  const armor: Plugin[] = [
    maxDepthPlugin({ n: limits.depth, exposeLimits: true, flattenFragments: true }),
    costLimitPlugin({ maxCost: limits.cost, exposeLimits: true }),
    maxAliasesPlugin({ n: limits.aliases, exposeLimits: true }),
    maxDirectivesPlugin({ n: limits.directives, exposeLimits: true }),
    maxTokensPlugin({ n: limits.tokens, exposeLimits: true }),
    useFieldRepeatLimit(MAX_FIELD_REPEATS),
  ] as Plugin[];

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: '/health',
    landingPage: false,
    batching: false,
    cors: guard.cors(),
    graphiql: introspection ? { title: 'Taskwarden', subscriptionsProtocol: 'WS' } : false,
    context,
    maskedErrors: { maskError: (error, message) => maskError(error, message) },
    logging: {
      debug: (...args) => yogaLog.debug(args.length === 1 ? args[0] : args),
      info: (...args) => yogaLog.info(args.length === 1 ? args[0] : args),
      warn: (...args) => yogaLog.warn(args.length === 1 ? args[0] : args),
      error: (...args) => yogaLog.error(args.length === 1 ? args[0] : args),
    },
    plugins: [
      useRequestId(),
      // Labels a caller cannot vary: no URL (its query string held secrets and grew without
      // bound), no operation name or error path (both chosen by the caller).
      usePrometheus({ registry: metrics.registry, endpoint: false, labels: { url: false, operationName: false, path: false } }),
      useRequestLimits({ path: GRAPHQL_PATH, maxBodyBytes: limits.bodyBytes }),
      useAdmission(),
      ...armor,
      ...(introspection ? [] : [useDisableIntrospection(), blockFieldSuggestionsPlugin() as Plugin]),
      useInputErrorCodes(),
      useReadinessCheck({ endpoint: '/ready', check: async () => (ready ? ready() : true) }),
      // Last, so REST calls pass every rule above first.
      useRestApi({ services, log, onCall: metrics.observers.restCall }),
    ],
  });

  metrics.watch(services, () => connections.size);

  /**
   * Refuses, before any parsing (so nothing is measured for it), a request
   * from a web page of another origin, and one without a valid token; and
   * serves /metrics to those who may read it. REST calls get the same origin
   * and open-mode Host rules (they check their token themselves).
   */
  function useAdmission(): Plugin {
    return {
      async onRequest({ request, url, endResponse, serverContext }) {
        const rest = url.pathname === REST_PREFIX || url.pathname.startsWith(`${REST_PREFIX}/`);
        if (url.pathname !== GRAPHQL_PATH && url.pathname !== METRICS_PATH && !rest) return;
        const refuse = (status: number, code: string, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) => {
          const requestId = requestContext.getStore()?.requestId;
          const body = rest
            ? { error: { code, message, request_id: requestId } }
            : { errors: [{ message, extensions: { code, ...details, requestId } }] };
          // The REST API's own errors say plain application/json (its OpenAPI document does too).
          const contentType = rest ? 'application/json' : 'application/json; charset=utf-8';
          return new Response(JSON.stringify(body), { status, headers: { 'content-type': contentType, ...headers } });
        };
        if (!guard.originAllowed(request.headers)) {
          return endResponse(
            refuse(403, 'FORBIDDEN', `Requests from the web page at ${request.headers.get('origin')} are not allowed (only this server's own pages, and CORS_ORIGINS).`),
          );
        }
        if (url.pathname === METRICS_PATH && metricsPort !== undefined) {
          return endResponse(refuse(404, 'NOT_FOUND', 'Metrics are served on METRICS_PORT.'));
        }
        // A REST call with a token authenticates in its own middleware; one without may be open mode.
        if (rest && request.headers.get('authorization')) return;
        let principal: Principal;
        try {
          principal = await authenticate(request.headers.get('authorization'), request.headers, (serverContext as { req?: IncomingMessage }).req?.socket.remoteAddress);
        } catch (error) {
          if (!(error instanceof TaskwardenError)) throw error;
          const status = { UNAUTHENTICATED: 401, FORBIDDEN: 403, LIMIT_EXCEEDED: 429, RATE_LIMITED: 429 }[error.code as string] ?? 400;
          const headers: Record<string, string> =
            status === 401
              ? { 'www-authenticate': 'Bearer' }
              : error.code === 'RATE_LIMITED'
                ? { 'retry-after': String(error.details.retryAfterSeconds) }
                : {};
          return endResponse(refuse(status, error.code, error.message, headers, error.details));
        }
        if (url.pathname === GRAPHQL_PATH) {
          admitted.set(request, principal);
          return;
        }
        if (rest) return;
        if (principal.source !== 'open' && !can(principal.role, 'metrics')) {
          return endResponse(refuse(403, 'FORBIDDEN', `A ${principal.role} token may not read metrics (viewer, operator or admin may).`));
        }
        endResponse(new Response(await metrics.registry.metrics(), { headers: { 'content-type': metrics.registry.contentType } }));
      },
    };
  }

  // Each request runs in its own log context, so every line written for it (errors included) names it.
  const dashboard = createDashboardHandler({ dir: dashboardDir, fallback: yoga, log });
  const server = createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs }, (req, res) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    requestContext.run({ requestId }, () => (isApiPath(req.url) ? yoga(req, res) : dashboard(req, res)));
  });
  limitConnectionsPerAddress(server, limits.connectionsPerAddress, log);
  const sockets = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: limits.bodyBytes,
    // A page of another site may open a WebSocket to any server: refused before the upgrade.
    verifyClient: ({ req }, done) => (guard.originAllowed(req.headers) ? done(true) : done(false, 403, 'Origin not allowed')),
  });

  // graphql-ws over the same path, through yoga's envelop, so WebSocket
  // operations get the same context, plugins and error masking as HTTP.
  useServer<Record<string, unknown>, SocketExtra>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        try {
          const principal = await authenticate(ctx.connectionParams?.authorization, ctx.extra.request.headers, ctx.extra.request.socket.remoteAddress);
          const release = connections.add(principal, (reason) => socket.close(CloseCode.Unauthorized, reason));
          // Freed with the socket itself: graphql-ws's onClose waits until every subscription's return() settles.
          socket.once('close', release);
          return true;
        } catch (error) {
          const known = error instanceof TaskwardenError;
          const code =
            known && (error.code === 'LIMIT_EXCEEDED' || error.code === 'FORBIDDEN')
              ? CloseCode.Forbidden
              : known && error.code === 'RATE_LIMITED'
                ? CloseCode.TooManyInitialisationRequests
                : CloseCode.Unauthorized;
          socket.close(code, known ? error.message.slice(0, 120) : 'Unauthorized');
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        // graphql-ws has already counted this one in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > limits.subscriptionsPerConnection) {
          return [new GraphQLError(`At most ${limits.subscriptionsPerConnection} subscriptions per connection.`, { extensions: { code: 'LIMIT_EXCEEDED' } })];
        }
        // Who the socket stands for is checked again for each operation (cached, so cheap): a socket
        // that connected in open mode, or with a token revoked since, may not run anything more.
        let principal: Principal;
        try {
          principal = await authenticate(ctx.connectionParams?.authorization, ctx.extra.request.headers, ctx.extra.request.socket.remoteAddress);
        } catch (error) {
          const message = error instanceof TaskwardenError ? error.message : 'Unauthorized';
          ctx.extra.socket.close(CloseCode.Unauthorized, message.slice(0, 120));
          return [maskError(error, 'Unauthorized') as GraphQLError];
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          principal,
          params: payload,
        });
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

  // A revoked token loses its live connections at once, on every instance; so do the
  // tokenless (open-mode) ones when the first token is made, since that ends open mode.
  const revocations = services.bus.subscribe('token:changed');
  void (async () => {
    for await (const change of revocations) {
      if (change.tokenId) connections.closeAll(change.tokenId, 'token revoked');
      else connections.closeAll(null, 'a token now exists: reconnect with one');
    }
  })();

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
      await revocations.return?.();
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

/** Sends the request id back, in a header and in every error's extensions, so a user's report leads to the log lines. */
function useRequestId(): Plugin {
  return {
    onResultProcess({ result }) {
      const requestId = requestContext.getStore()?.requestId;
      if (!requestId) return;
      for (const single of Array.isArray(result) ? result : [result]) {
        if (single && typeof single === 'object' && 'errors' in single && single.errors) {
          for (const error of single.errors) Object.assign(error.extensions as Record<string, unknown>, { requestId });
        }
      }
    },
    onResponse({ response }) {
      const requestId = requestContext.getStore()?.requestId;
      if (requestId) response.headers.set('x-request-id', requestId);
    },
  };
}

/** Refusals that have an HTTP status of their own (401, 429), with their code, instead of a generic 500 or 200. */
function asHttpError(error: unknown): unknown {
  if (!(error instanceof TaskwardenError)) return error;
  const http: { status: number; headers?: Record<string, string> } | undefined =
    error.code === 'UNAUTHENTICATED'
      ? { status: 401, headers: { 'www-authenticate': 'Bearer' } }
      : error.code === 'LIMIT_EXCEEDED'
        ? { status: 429 }
        : error.code === 'RATE_LIMITED'
          ? { status: 429, headers: { 'retry-after': String(error.details.retryAfterSeconds) } }
          : undefined;
  return http ? new GraphQLError(error.message, { extensions: { code: error.code, ...error.details, http } }) : error;
}

// Everything else is the dashboard's (GET and HEAD; other methods get yoga's 404).
const API_PATHS = [GRAPHQL_PATH, '/health', '/ready', METRICS_PATH, REST_PREFIX];
function isApiPath(url = '/'): boolean {
  const path = url.split('?', 1)[0]!;
  return API_PATHS.some((api) => path === api || path.startsWith(`${api}/`));
}

type Enveloped = ReturnType<YogaServerInstance<Record<string, unknown>, Context>['getEnveloped']>;
