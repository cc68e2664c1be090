import { createRoute, z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { forbidden } from '../auth/access.js';
import { can, type Permission, type Principal } from '../auth/roles.js';
import * as valid from '../tasks/validate.js';
import { ErrorBody } from './schemas.js';

/** Where the REST API lives: the seed's paths, so its scripts and cron jobs keep working. */
export const REST_PREFIX = '/api/v1';

/** `address`: the client's, for counting failed authentications (see auth/access.ts). */
export type RestEnv = { Variables: { principal: Principal }; Bindings: { address?: string } };
export type RestApp = OpenAPIHono<RestEnv>;

const errorResponses = {
  400: 'Bad input: a malformed task id, a parameter of the wrong type, out of range, or unknown.',
  401: 'No token, or not a valid one, while the server requires one.',
  403: "The token's role may not do this.",
  404: 'No such task.',
  409: 'The task is not in a state that allows this (its current status is in error.status).',
  500: 'Unexpected: the server logged it under error.request_id.',
} as const;
type ErrorStatus = keyof typeof errorResponses;

const json = <S extends z.ZodType>(schema: S) => ({ 'application/json': { schema } });

/**
 * A REST operation: its route (the OpenAPI document's), the permission its
 * GraphQL twin asks for, checked before its parameters are read, and the
 * error responses it can give.
 */
export function operation<R extends Omit<RouteConfig, 'responses' | 'middleware'>, S extends z.ZodType>(
  route: R & { permission: Permission; graphql: string; ok: { description: string; schema: S }; errors: ErrorStatus[] },
) {
  const { permission, graphql, ok, errors, ...config } = route;
  const name = `${config.method.toUpperCase()} ${config.path}`;
  return createRoute({
    ...config,
    'x-permission': permission,
    'x-graphql': graphql,
    middleware: [requires(permission, name)] as const,
    responses: {
      200: { description: ok.description, content: json(ok.schema) },
      ...Object.fromEntries(
        [...new Set<ErrorStatus>([...errors, 401, 500, ...(permission === 'read' ? [] : [403 as const])])].map((status) => [
          status,
          { description: errorResponses[status], content: json(ErrorBody) },
        ]),
      ),
    },
  });
}

function requires(permission: Permission, operation: string): MiddlewareHandler<RestEnv> {
  return async (c, next) => {
    const principal: Principal = c.get('principal');
    if (!can(principal.role, permission)) throw forbidden(principal, operation);
    await next();
  };
}

/**
 * Query parameters parse their text into a type here; the domain's rules
 * (a positive timeout, a task id, which statuses a force may set) stay in
 * the services, which check them for GraphQL and REST alike.
 */
export const param = {
  number: (description: string) => z.coerce.number({ error: 'expected a number' }).openapi({ type: 'number', description }),
  boolean: (description: string) => z.stringbool({ error: 'expected true or false' }).openapi({ type: 'boolean', description }),
  text: (description: string) => z.string().openapi({ description }),
  taskId: z.object({ task_id: z.string().openapi({ format: 'uuid', description: "The task's id." }) }),
};

/** A task id from a path, checked by the one rule for task ids. */
export const taskIdOf = (params: { task_id: string }) => valid.taskId(params.task_id, 'task_id');
