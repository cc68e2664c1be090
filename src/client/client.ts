import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws/client'; // the client alone: the root entry loads graphql for its server
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import type { CreateTaskInput, StuckAction, TaskStatus, TokenRole } from '../generated/graphql/graphql.js';
import { TaskwardenClientError, type Sink } from './results.js';
import { followTaskUpdates, type FollowFilter, type FollowHandlers } from './follow.js';
import * as ops from './operations.js';

export { TaskwardenClientError, type Sink } from './results.js';

export interface TaskwardenClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql (or TASKWARDEN_URL). */
  url: string;
  /** An API token, sent as `Authorization: Bearer` and in graphql-ws connectionParams. */
  token?: string;
  /** Per-request time limit in milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** A WebSocket implementation for subscriptions where there is no global one (Node 20: `import WebSocket from 'ws'`). */
  webSocketImpl?: unknown;
  /** Reconnect attempts for subscriptions after the connection drops. Default: keep trying. */
  retryAttempts?: number;
  fetch?: typeof fetch;
}

/** A typed document as GraphQL Code Generator writes it in string mode: any project's own documents too. */
export type TypedDocument<R = any, V = any> = DocumentTypeDecoration<R, V> & { toString(): string };

type Data<D> = D extends DocumentTypeDecoration<infer R, any> ? R : never;
type Vars<D> = D extends DocumentTypeDecoration<any, infer V> ? V : never;

export type TaskwardenClient = ReturnType<typeof createTaskwardenClient>;

/**
 * The typed GraphQL client for automation, workers, the CLI and the dashboard.
 * Queries and mutations go over fetch; subscriptions over one shared graphql-ws
 * connection, opened on first use.
 */
export function createTaskwardenClient(options: TaskwardenClientOptions) {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let ws: WsClient | undefined;
  const connectionListeners = new Set<(state: 'connected' | 'closed') => void>();

  async function request<D extends TypedDocument>(document: D, ...rest: Vars<D> extends Record<string, never> ? [Vars<D>?] : [Vars<D>]): Promise<Data<D>> {
    const variables = rest[0];
    let response: Response;
    try {
      response = await doFetch(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ query: document.toString(), variables }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new TaskwardenClientError('NETWORK_ERROR', `Taskwarden at ${options.url} is unreachable: ${describe(error)}`);
    }
    let body: { data?: Data<D> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      if ((error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') {
        throw new TaskwardenClientError('NETWORK_ERROR', `Taskwarden at ${options.url} did not answer in time`);
      }
      throw new TaskwardenClientError('HTTP_ERROR', `Taskwarden at ${options.url} answered HTTP ${response.status} without a GraphQL result`, {
        status: response.status,
      });
    }
    const first = body.errors?.[0];
    if (first) {
      const { code = 'INTERNAL_SERVER_ERROR', ...details } = first.extensions ?? {};
      throw new TaskwardenClientError(String(code), first.message, details);
    }
    if (!body.data) throw new TaskwardenClientError('HTTP_ERROR', `Taskwarden answered HTTP ${response.status} with no data`, { status: response.status });
    return body.data;
  }

  function socket(): WsClient {
    if (!ws) {
      const webSocketImpl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
      if (!webSocketImpl) {
        throw new TaskwardenClientError('CLIENT_SETUP', 'Subscriptions need a WebSocket: pass webSocketImpl (in Node 20: `import WebSocket from "ws"`).');
      }
      ws = createWsClient({
        url: options.url.replace(/^http/, 'ws'),
        webSocketImpl,
        connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : {},
        retryAttempts: options.retryAttempts ?? Number.POSITIVE_INFINITY,
        shouldRetry: () => true,
        lazy: true,
        on: {
          connected: () => connectionListeners.forEach((listener) => listener('connected')),
          closed: () => connectionListeners.forEach((listener) => listener('closed')),
        },
      });
    }
    return ws;
  }

  /** Subscribes; returns the function that unsubscribes. */
  function subscribe<D extends TypedDocument>(document: D, variables: Vars<D>, sink: Sink<Data<D>>): () => void {
    return socket().subscribe<Data<D>>(
      { query: document.toString(), variables: variables as Record<string, unknown> },
      {
        next: (result) => {
          const first = result.errors?.[0];
          if (first) {
            const { code = 'INTERNAL_SERVER_ERROR', ...details } = (first.extensions ?? {}) as Record<string, unknown>;
            sink.error?.(new TaskwardenClientError(String(code), first.message, details));
          } else if (result.data) {
            sink.next(result.data);
          }
        },
        error: (error) => sink.error?.(asClientError(error)),
        complete: () => sink.complete?.(),
      },
    );
  }

  const client = {
    url: options.url,
    request,
    subscribe,
    /** Hears when the subscription connection opens and drops (to show it, and to refetch after a reconnect). */
    onConnection(listener: (state: 'connected' | 'closed') => void) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },

    createTask: async (input: CreateTaskInput) => (await request(ops.CreateTaskDocument, { input })).createTask,
    /** Up to 1,000 in one transaction: all or none. */
    createTasks: async (inputs: CreateTaskInput[]) => (await request(ops.CreateTasksDocument, { inputs })).createTasks,
    queues: async () => (await request(ops.QueuesDocument)).queues,
    setKindLimit: async (kind: string, maxRunning: number | null) => (await request(ops.SetKindLimitDocument, { kind, maxRunning })).setKindLimit,
    pauseKind: async (kind: string) => (await request(ops.PauseKindDocument, { kind })).pauseKind,
    resumeKind: async (kind: string) => (await request(ops.ResumeKindDocument, { kind })).resumeKind,
    getTask: async (id: string) => (await request(ops.GetTaskDocument, { id })).task,
    listTasks: async (filter: { status?: TaskStatus[]; kind?: string; first?: number; after?: string } = {}) =>
      (await request(ops.ListTasksDocument, filter)).tasks,
    /** Stuck under the server's clocks, or under one timeout (minutes) when given. */
    stuckTasks: async (timeoutMinutes?: number) => (await request(ops.StuckTasksDocument, { timeoutMinutes })).stuckTasks,
    stats: (since?: string) => request(ops.TaskStatsDocument, { since }),
    events: async (filter: { taskId?: string; kinds?: string[]; afterEventId?: string; first?: number } = {}) =>
      (await request(ops.TaskEventsDocument, filter)).taskEvents,
    stopTask: async (id: string, reason?: string) => (await request(ops.StopTaskDocument, { id, reason })).stopTask,
    forceComplete: async (id: string, options: { status?: 'CANCELLED' | 'FAILED'; reason?: string } = {}) =>
      (await request(ops.ForceCompleteDocument, { id, status: options.status ?? 'CANCELLED', reason: options.reason })).forceComplete,
    deleteTask: async (id: string) => (await request(ops.DeleteTaskDocument, { id })).deleteTask,
    cleanupStuck: async (options: { timeoutMinutes?: number; autoFix?: boolean; action?: StuckAction } = {}) =>
      (await request(ops.CleanupStuckDocument, options)).cleanupStuck,
    runMonitorSweep: async () => (await request(ops.RunMonitorSweepDocument)).runMonitorSweep,

    claimTask: async (workerId: string, kinds?: string[]) => (await request(ops.ClaimTaskDocument, { workerId, kinds })).claimTask,
    startTask: async (id: string, workerId: string) => (await request(ops.StartTaskDocument, { id, workerId })).startTask,
    reportProgress: async (id: string, leaseToken: string, report: { progress?: number; message?: string } = {}) =>
      (await request(ops.ReportProgressDocument, { id, leaseToken, ...report })).reportProgress,
    /** Many reports at once (at most 1000), each on its own lease; results in input order (`code` names a refusal). */
    reportProgressBatch: async (reports: { id: string; leaseToken: string; progress?: number | null; message?: string | null }[]) =>
      (await request(ops.ReportProgressBatchDocument, { reports })).reportProgressBatch,
    completeTask: async (id: string, leaseToken: string, result?: unknown) =>
      (await request(ops.CompleteTaskDocument, { id, leaseToken, result })).completeTask,
    /** With `retryable`, requeued with backoff while attempts remain. */
    failTask: async (id: string, leaseToken: string, error: string, options: { retryable?: boolean } = {}) =>
      (await request(ops.FailTaskDocument, { id, leaseToken, error, retryable: options.retryable })).failTask,
    releaseTask: async (id: string, leaseToken: string, reason?: string) => (await request(ops.ReleaseTaskDocument, { id, leaseToken, reason })).releaseTask,

    apiTokens: async () => (await request(ops.ApiTokensDocument)).apiTokens,
    createApiToken: async (name: string, role: TokenRole) => (await request(ops.CreateApiTokenDocument, { name, role })).createApiToken,
    revokeApiToken: async (name: string) => (await request(ops.RevokeApiTokenDocument, { name })).revokeApiToken,

    onTaskUpdated: (filter: { id?: string; kinds?: string[]; afterEventId?: string }, sink: Sink<Data<typeof ops.TaskUpdatedDocument>['taskUpdated']>) =>
      subscribe(ops.TaskUpdatedDocument, filter, { ...sink, next: (data) => sink.next(data.taskUpdated) }),
    /**
     * `taskUpdated` that survives reconnects and overflows: it resumes after the last entry it
     * delivered, so each entry arrives once and none is missed. Returns the function that stops it.
     */
    followTaskUpdates<D extends TypedDocument<{ taskUpdated: { id: string } }, any> = typeof ops.TaskUpdatedDocument>(
      filter: FollowFilter,
      handlers: FollowHandlers<Data<D>['taskUpdated']>,
      /** A `taskUpdated` document of the caller's own (other fields); the SDK's by default. */
      document: D = ops.TaskUpdatedDocument as unknown as D,
    ) {
      return followTaskUpdates<Data<D>['taskUpdated']>(
        {
          taskUpdated: (variables, sink) => subscribe(document, variables as Vars<D>, { ...sink, next: (data) => sink.next(data.taskUpdated) }),
          onConnection: client.onConnection,
        },
        filter,
        handlers,
      );
    },
    onTaskProgress: (id: string, sink: Sink<Data<typeof ops.TaskProgressDocument>['taskProgress']>) =>
      subscribe(ops.TaskProgressDocument, { id }, { ...sink, next: (data) => sink.next(data.taskProgress) }),
    onStuckTask: (sink: Sink<Data<typeof ops.StuckTaskDetectedDocument>['stuckTaskDetected']>) =>
      subscribe(ops.StuckTaskDetectedDocument, {}, { ...sink, next: (data) => sink.next(data.stuckTaskDetected) }),

    /** Closes the subscription connection, if one was opened. */
    async close() {
      const closing = ws;
      ws = undefined;
      // graphql-ws rejects dispose() when it is waiting to reconnect (the server is down): nothing is left to close then.
      await Promise.resolve(closing?.dispose()).catch(() => {});
    },
  };
  return client;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === 'TimeoutError') return 'timed out';
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}

function asClientError(error: unknown): TaskwardenClientError {
  if (error instanceof TaskwardenClientError) return error;
  if (Array.isArray(error)) {
    const first = error[0] as { message?: string; extensions?: { code?: string } } | undefined;
    return new TaskwardenClientError(first?.extensions?.code ?? 'GRAPHQL_ERROR', first?.message ?? 'subscription failed');
  }
  const event = error as { code?: number; reason?: string; message?: string };
  if (typeof event?.code === 'number')
    return new TaskwardenClientError('NETWORK_ERROR', `subscription connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`);
  return new TaskwardenClientError('NETWORK_ERROR', event?.message ?? 'subscription connection failed');
}
