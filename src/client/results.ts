// What a request or a subscription hands back, apart from data: its own file, so follow.ts and client.ts both use it.

/**
 * A request that did not succeed. `code` is the server's `extensions.code`
 * (NOT_FOUND, LEASE_MISMATCH, TASK_NOT_TERMINAL, ...) or, when no answer came,
 * NETWORK_ERROR (unreachable, timed out) or HTTP_ERROR (an answer that was not GraphQL).
 */
export class TaskwardenClientError extends Error {
  override readonly name = 'TaskwardenClientError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** True when the server may not have seen the request: retrying it is safe for lease-fenced writes. */
  get isNetworkError() {
    return this.code === 'NETWORK_ERROR';
  }
}

export interface Sink<T> {
  next(value: T): void;
  error?(error: TaskwardenClientError): void;
  complete?(): void;
}
