import { TaskwardenError, type ErrorCode } from '../errors.js';
import { requestContext, type Logger } from '../log.js';
import type { ErrorBody } from './schemas.js';

/**
 * The HTTP status of each error a caller can act on. A Record, so a new
 * code does not compile until it has one here.
 */
const httpStatus: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_TRANSITION: 409,
  TASK_NOT_TERMINAL: 409,
  LEASE_MISMATCH: 409,
  ALREADY_EXISTS: 409,
  LAST_ADMIN_TOKEN: 409,
  IDEMPOTENCY_CONFLICT: 409,
  DEPENDENCY_CYCLE: 400,
  DEPENDENCY_FAILED: 409,
  TASK_NOT_READY: 409,
  LIMIT_EXCEEDED: 429,
  RATE_LIMITED: 429,
  SUBSCRIPTION_OVERFLOW: 503,
  STALE_CURSOR: 410,
  CONFIG_INVALID: 500,
  DATA_DIR_LOCKED: 500,
  DATA_DIR_DAMAGED: 500,
  MIGRATION_FAILED: 500,
};

export interface RestError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/**
 * What an error looks like to a REST caller: `{ "error": { "code", "message" } }`.
 * A TaskwardenError keeps its code and message, as in GraphQL (see
 * graphql/errors.ts); anything else is logged and answered with a bare 500,
 * so no stack trace or SQL ever reaches a caller.
 */
export function restError(error: unknown, log: Logger): RestError {
  const requestId = requestContext.getStore()?.requestId;
  if (error instanceof TaskwardenError) {
    const { field, status } = error.details as { field?: unknown; status?: unknown };
    return {
      status: httpStatus[error.code],
      body: {
        error: {
          code: error.code,
          message: error.message,
          request_id: requestId,
          ...(typeof field === 'string' ? { field } : {}),
          ...(typeof status === 'string' ? { status: status.toLowerCase() as NonNullable<ErrorBody['error']['status']> } : {}),
        },
      },
      headers:
        error.code === 'UNAUTHENTICATED'
          ? { 'www-authenticate': 'Bearer' }
          : error.code === 'RATE_LIMITED'
            ? { 'retry-after': String(error.details.retryAfterSeconds) }
            : {},
    };
  }
  log.error({ err: error }, 'REST call failed unexpectedly');
  return { status: 500, body: { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.', request_id: requestId } }, headers: {} };
}

/** An error of the REST layer itself (no such route, wrong method): not a domain error, so not a TaskwardenError. */
export function routeError(status: 404 | 405, code: string, message: string, headers: Record<string, string> = {}): RestError {
  return { status, body: { error: { code, message, request_id: requestContext.getStore()?.requestId } }, headers };
}
