/**
 * Errors a caller can act on. Each carries a stable `code` that reaches
 * GraphQL clients as `extensions.code` and the CLI as its message; anything
 * thrown that is not a TaskwardenError is unexpected and gets masked.
 */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'INVALID_TRANSITION'
  | 'TASK_NOT_TERMINAL'
  | 'LEASE_MISMATCH'
  | 'CONFIG_INVALID'
  | 'DATA_DIR_LOCKED'
  | 'DATA_DIR_DAMAGED'
  | 'MIGRATION_FAILED'
  | 'SUBSCRIPTION_OVERFLOW'
  | 'STALE_CURSOR'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'LIMIT_EXCEEDED'
  | 'ALREADY_EXISTS'
  | 'LAST_ADMIN_TOKEN'
  | 'RATE_LIMITED'
  | 'IDEMPOTENCY_CONFLICT'
  | 'DEPENDENCY_CYCLE'
  | 'DEPENDENCY_FAILED'
  | 'TASK_NOT_READY';

export class TaskwardenError extends Error {
  override readonly name = 'TaskwardenError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable facts, e.g. the task's current status. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badInput = (field: string, message: string) => new TaskwardenError('BAD_USER_INPUT', `${field}: ${message}`, { field });
