import { Client as WsClient, createClient } from 'graphql-ws';
import pino from 'pino';
import WebSocket from 'ws';
import { manualClock, systemClock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { startTaskwarden, type Taskwarden } from '../../src/server/taskwarden.js';
import type { TestDatabase } from './databases.js';
import { beforeAllValue } from './fixture.js';

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: string[] }[];
}

export interface TestServer {
  taskwarden: Taskwarden;
  url: string;
  /** The server's clock: moved by the test, unless the server was started on real time. */
  clock: ReturnType<typeof manualClock>;
  /** POSTs one operation to the real HTTP server. */
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
  /** Like gql, but throws on errors and returns data. */
  ok<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  ws(): WsClient;
  stop(): Promise<void>;
}

/**
 * A whole Taskwarden (HTTP + WebSocket on port 0, services, monitor) over a
 * test database, with a clock the test moves. The monitor is off unless the
 * test turns it on: tests run sweeps themselves.
 */
export async function startTestServer(
  database: TestDatabase,
  env: Record<string, string> = {},
  options: { realTime?: boolean; dashboardDir?: string } = {},
): Promise<TestServer> {
  const config: Config = loadConfig({ PORT: '0', MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent', ...env });
  const clock = manualClock(new Date());
  const taskwarden = await startTaskwarden({
    config,
    log: pino({ level: config.logLevel }),
    clock: options.realTime ? systemClock : clock,
    db: database.db,
    dashboardDir: options.dashboardDir,
  });
  const wsClients: WsClient[] = [];
  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const response = await fetch(taskwarden.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse;
  };
  return {
    taskwarden,
    url: taskwarden.url,
    clock,
    gql,
    async ok(query, variables) {
      const result = await gql(query, variables);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data;
    },
    ws() {
      const client = createClient({ url: taskwarden.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      wsClients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(wsClients.map((c) => c.dispose()));
      await taskwarden.stop();
    },
  };
}

/** The describe's own server over `database` (see startTestServer): started before its first test, stopped after its last. */
export function useTestServer(
  database: TestDatabase,
  env: Record<string, string> = {},
  options: { realTime?: boolean; dashboardDir?: string; timeout?: number } = {},
): TestServer {
  return beforeAllValue('the test server', () => startTestServer(database, env, options), { dispose: (server) => server.stop(), timeout: options.timeout });
}
