import type { IncomingMessage } from 'node:http';
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Plugin } from 'graphql-yoga';
import { badInput } from '../errors.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { restError, routeError, type RestError } from './errors.js';
import { registerMonitorRoutes } from './monitor.js';
import { REST_PREFIX, type RestApp, type RestEnv } from './operation.js';
import { registerTaskRoutes } from './tasks.js';

export { REST_PREFIX };
export const OPENAPI_PATH = `${REST_PREFIX}/openapi.json`;

/** One REST call as metrics count it: by route template (`/api/v1/tasks/{task_id}`), never the raw URL. */
export interface RestCall {
  method: string;
  /** The route template, or "unmatched" for a path that is no route. */
  route: string;
  status: number;
  seconds: number;
}

export interface RestApiOptions {
  services: Services;
  log: Logger;
  /** Hears every call, for metrics. */
  onCall?: (call: RestCall) => void;
}

/**
 * The seed's REST endpoints and the calls manage_tasks.py needs, over the
 * same services as the GraphQL resolvers and with the same tokens and roles
 * (each route names the permission of its GraphQL twin in `x-permission`).
 */
export function createRestApi({ services, log, onCall }: RestApiOptions): RestApp {
  const restLog = log.child({ component: 'rest' });
  const api: RestApp = new OpenAPIHono<RestEnv>({
    defaultHook: (result) => {
      if (!result.success) throw parameterError(result.error);
    },
  });

  const answer = (error: RestError) =>
    new Response(JSON.stringify(error.body), { status: error.status, headers: { 'content-type': 'application/json', ...error.headers } });

  api.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    onCall?.({ method: c.req.method, route: routeTemplate(c), status: c.res.status, seconds: (performance.now() - started) / 1000 });
  });
  api.use('*', async (c, next) => {
    c.set('principal', await services.access.authenticate(c.req.header('authorization') ?? null, c.env?.address));
    await next();
  });
  api.onError((error) => answer(restError(error, restLog)));
  api.notFound((c) => {
    const allowed = allowedMethods(api, c.req.path);
    return answer(
      allowed.length > 0
        ? routeError(405, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path}: use ${allowed.join(' or ')}.`, { allow: allowed.join(', ') })
        : routeError(404, 'NOT_FOUND', `No REST endpoint at ${c.req.method} ${c.req.path}; see ${OPENAPI_PATH}.`),
    );
  });

  registerMonitorRoutes(api, services);
  registerTaskRoutes(api, services);

  api.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (`taskwarden token create`). Without any token the server is open, and listens on loopback only.',
  });
  const document = api.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Taskwarden REST API',
      version: '1',
      description:
        "The seed platform's REST calls, served by Taskwarden next to its GraphQL API: snake_case JSON, lower-case statuses, " +
        'errors as {"error": {"code", "message"}}. Each operation names the permission it needs (x-permission) and its GraphQL twin (x-graphql).',
    },
    security: [{ bearer: [] }, {}],
  });
  api.get(OPENAPI_PATH, (c) => c.json(document));
  return api;
}

/**
 * Serves the REST API from inside yoga's request pipeline, so REST calls get
 * everything the server does to every request (request ids, origin and Host
 * rules, CORS). Register it after those plugins.
 */
export function useRestApi(options: RestApiOptions): Plugin {
  const api = createRestApi(options);
  return {
    onRequest({ request, url, serverContext, endResponse }) {
      if (url.pathname !== REST_PREFIX && !url.pathname.startsWith(`${REST_PREFIX}/`)) return;
      const address = (serverContext as { req?: IncomingMessage }).req?.socket.remoteAddress;
      return Promise.resolve(api.fetch(request, { address })).then(endResponse);
    },
  };
}

function parameterError(error: z.ZodError) {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    return badInput(issue.keys[0]!, `is not a parameter of this endpoint (see ${OPENAPI_PATH})`);
  }
  return badInput(String(issue.path[0] ?? 'query'), issue.message);
}

/** Hono's `/tasks/:task_id` as OpenAPI writes it, `/tasks/{task_id}`; "unmatched" when no route took the request. */
function routeTemplate(c: Context<RestEnv>): string {
  const route = matchedRoutes(c)
    .filter((r) => r.method !== 'ALL')
    .at(-1);
  return route ? route.path.replace(/:([^/]+)/g, '{$1}') : 'unmatched';
}

function allowedMethods(api: RestApp, path: string): string[] {
  const methods = new Set<string>();
  for (const route of api.routes) {
    if (route.method === 'ALL') continue;
    const pattern = new RegExp(`^${route.path.replace(/:[^/]+/g, '[^/]+')}$`);
    if (pattern.test(path)) methods.add(route.method);
  }
  return [...methods];
}
