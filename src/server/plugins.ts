import type { IncomingMessage } from 'node:http';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { useReadinessCheck, type Plugin } from 'graphql-yoga';
import { can, type Principal } from '../auth/roles.js';
import type { Limits } from '../config.js';
import { TaskwardenError } from '../errors.js';
import { useInputErrorCodes } from '../graphql/errors.js';
import { requestContext, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { useRestApi } from '../rest/api.js';
import type { Services } from '../services.js';
import type { BrowserGuard } from './browser-access.js';
import type { RequestAuth } from './context.js';
import { useFieldRepeatLimit } from './field-repeats.js';
import { GRAPHQL_PATH, isRestPath, METRICS_PATH } from './paths.js';
import { useRequestId } from './request-id.js';
import { useRequestLimits } from './request-limits.js';
import { useSharedSubscriptionResults } from './shared-results.js';

/** How often one field may repeat within a selection set (repeats merge, so more is never needed). */
const MAX_FIELD_REPEATS = 3;

export interface PluginOptions {
  services: Services;
  log: Logger;
  metrics: Metrics;
  limits: Limits;
  guard: BrowserGuard;
  auth: RequestAuth;
  /** When set, /metrics is served on that port and the API's own /metrics answers 404. */
  metricsPort?: number;
  introspection: boolean;
  ready?: () => Promise<boolean>;
}

/** yoga's plugins, in the order they must run: request id, metrics, size limits, admission, armor, then REST last. */
export function apiPlugins({ services, log, metrics, limits, guard, auth, metricsPort, introspection, ready }: PluginOptions) {
  return [
    useRequestId(),
    // Labels a caller cannot vary: no URL (its query string held secrets and grew without
    // bound), no operation name or error path (both chosen by the caller).
    usePrometheus({ registry: metrics.registry, endpoint: false, labels: { url: false, operationName: false, path: false } }),
    useRequestLimits({ path: GRAPHQL_PATH, maxBodyBytes: limits.bodyBytes }),
    useAdmission({ metrics, guard, auth, metricsPort }),
    ...armor(limits),
    ...(introspection ? [] : [useDisableIntrospection(), blockFieldSuggestionsPlugin() as Plugin]),
    useInputErrorCodes(),
    useSharedSubscriptionResults(),
    useReadinessCheck({ endpoint: '/ready', check: async () => (ready ? ready() : true) }),
    // Last, so REST calls pass every rule above first.
    useRestApi({ services, log, onCall: metrics.observers.restCall }),
  ];
}

/** Bounds on a document's shape (LIMIT_* settings), checked before it runs. */
function armor(limits: Limits): Plugin[] {
  return [
    maxDepthPlugin({ n: limits.depth, exposeLimits: true, flattenFragments: true }),
    costLimitPlugin({ maxCost: limits.cost, exposeLimits: true }),
    maxAliasesPlugin({ n: limits.aliases, exposeLimits: true }),
    maxDirectivesPlugin({ n: limits.directives, exposeLimits: true }),
    maxTokensPlugin({ n: limits.tokens, exposeLimits: true }),
    useFieldRepeatLimit(MAX_FIELD_REPEATS),
  ] as Plugin[];
}

/**
 * Refuses, before any parsing (so nothing is measured for it), a request
 * from a web page of another origin, and one without a valid token; and
 * serves /metrics to those who may read it. REST calls get the same origin
 * and open-mode Host rules (they check their token themselves).
 */
function useAdmission({ metrics, guard, auth, metricsPort }: Pick<PluginOptions, 'metrics' | 'guard' | 'auth' | 'metricsPort'>): Plugin {
  return {
    async onRequest({ request, url, endResponse, serverContext }) {
      const rest = isRestPath(url.pathname);
      if (url.pathname !== GRAPHQL_PATH && url.pathname !== METRICS_PATH && !rest) return;
      const refuse = (status: number, code: string, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) => {
        const requestId = requestContext.getStore()?.requestId;
        const body = rest ? { error: { code, message, request_id: requestId } } : { errors: [{ message, extensions: { code, ...details, requestId } }] };
        // The REST API's own errors say plain application/json (its OpenAPI document does too).
        const contentType = rest ? 'application/json' : 'application/json; charset=utf-8';
        return new Response(JSON.stringify(body), { status, headers: { 'content-type': contentType, ...headers } });
      };
      if (!guard.originAllowed(request.headers)) {
        return endResponse(
          refuse(
            403,
            'FORBIDDEN',
            `Requests from the web page at ${request.headers.get('origin')} are not allowed (only this server's own pages, and CORS_ORIGINS).`,
          ),
        );
      }
      if (url.pathname === METRICS_PATH && metricsPort !== undefined) {
        return endResponse(refuse(404, 'NOT_FOUND', 'Metrics are served on METRICS_PORT.'));
      }
      // A REST call with a token authenticates in its own middleware; one without may be open mode.
      if (rest && request.headers.get('authorization')) return;
      let principal: Principal;
      try {
        principal = await auth.authenticate(
          request.headers.get('authorization'),
          request.headers,
          (serverContext as { req?: IncomingMessage }).req?.socket.remoteAddress,
        );
      } catch (error) {
        if (!(error instanceof TaskwardenError)) throw error;
        const status = { UNAUTHENTICATED: 401, FORBIDDEN: 403, LIMIT_EXCEEDED: 429, RATE_LIMITED: 429 }[error.code as string] ?? 400;
        const headers: Record<string, string> =
          status === 401 ? { 'www-authenticate': 'Bearer' } : error.code === 'RATE_LIMITED' ? { 'retry-after': String(error.details.retryAfterSeconds) } : {};
        return endResponse(refuse(status, error.code, error.message, headers, error.details));
      }
      if (url.pathname === GRAPHQL_PATH) {
        auth.admit(request, principal);
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
