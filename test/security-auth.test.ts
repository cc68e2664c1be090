import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { databaseKinds, openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Authentication, open mode and live-connection slots (issue 10, items 1-3, 8, 9, 10a). */

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

function wsClient(server: TestServer, token?: string): Client {
  return createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
  });
}

/** Resolves with 'connected' or the close code, whichever comes first. */
function connection(client: Client): Promise<'connected' | number> {
  return new Promise((resolve) => {
    client.on('connected', () => resolve('connected'));
    client.on('closed', (event) => resolve((event as { code: number }).code));
  });
}

/** `taskwarden_live_connections` as /metrics reports it. */
async function liveConnectionsGauge(server: TestServer, token?: string): Promise<number> {
  const text = await (await fetch(server.url.replace('/graphql', '/metrics'), { headers: bearer(token) })).text();
  const line = text.split('\n').find((l) => l.startsWith('taskwarden_live_connections '));
  if (!line) throw new Error(`no taskwarden_live_connections in /metrics: ${text.slice(0, 200)}`);
  return Number(line.split(' ')[1]);
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A subscription to a task that never changes again: it replays the task's one history entry (so the test knows the
 * server is listening on the bus), then waits for events that never come, as a dashboard on a quiet task does.
 */
const quietSubscription = (taskId: string) => `subscription { taskUpdated(id: "${taskId}", afterEventId: "0") { id type } }`;

async function quietTask(server: TestServer, token?: string): Promise<string> {
  const { json } = await post(server.url, { query: 'mutation { createTask(input: { name: "quiet" }) { id } }' }, bearer(token));
  return json.data.createTask.id;
}

/** Opens a WebSocket, subscribes, waits for the replayed entry, and closes it. */
async function subscribeAndClose(server: TestServer, taskId: string, token?: string) {
  const client = wsClient(server, token);
  const outcome = connection(client);
  const first = new Promise((resolve, reject) =>
    client.subscribe({ query: quietSubscription(taskId) }, { next: resolve, error: reject, complete: () => reject(new Error('completed')) }),
  );
  const state = await outcome;
  if (state !== 'connected') throw new Error(`WebSocket refused with close code ${state}`);
  expect(await first).toMatchObject({ data: { taskUpdated: { type: 'CREATED' } } });
  await client.dispose();
}

/** Opens an SSE subscription, waits for the replayed entry, and goes away. */
async function sseSubscribeAndAbort(server: TestServer, taskId: string, token?: string) {
  const controller = new AbortController();
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(token) },
    body: JSON.stringify({ query: quietSubscription(taskId) }),
    signal: controller.signal,
  });
  if (response.status !== 200) throw new Error(`SSE refused with HTTP ${response.status}: ${await response.text()}`);
  const reader = response.body!.getReader();
  let text = '';
  while (!text.includes('CREATED')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`SSE ended early: ${text}`);
    text += new TextDecoder().decode(value);
  }
  controller.abort();
  await reader.cancel().catch(() => {});
}

describe.each(databaseKinds)('connection slots of closed subscriptions [%s]', (kind) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await database.close();
  });

  const CYCLES = 210; // past the default MAX_CONNECTIONS_PER_TOKEN (200)
  const SLOW = 180_000; // hundreds of real connections on a shared machine

  it(`frees a token's slot when its WebSocket closes: ${CYCLES} open/subscribe/close cycles, then the next connection works`, async () => {
    const server = await startTestServer(database);
    try {
      const { token } = await server.taskwarden.services.tokens.create({ name: `ws-cycler-${kind}`, role: 'admin', createdBy: 'test' });
      const taskId = await quietTask(server, token);
      const baseline = await liveConnectionsGauge(server, token);
      const listening = server.taskwarden.services.bus.openSubscriptions;
      for (let i = 0; i < CYCLES; i++) await subscribeAndClose(server, taskId, token);
      await until(async () => (await liveConnectionsGauge(server, token)) === baseline, 'the connections gauge to return to its baseline');
      await until(() => server.taskwarden.services.bus.openSubscriptions === listening, 'every subscription to stop listening on the bus');
      const next = wsClient(server, token);
      expect(await connection(next)).toBe('connected');
      await next.dispose();
      await sseSubscribeAndAbort(server, taskId, token);
    } finally {
      await server.stop();
    }
  }, SLOW);

  it(`frees an SSE stream's slot when the client goes away: ${CYCLES} cycles on one token`, async () => {
    const server = await startTestServer(database);
    try {
      const { token } = await server.taskwarden.services.tokens.create({ name: `sse-cycler-${kind}`, role: 'admin', createdBy: 'test' });
      const taskId = await quietTask(server, token);
      const baseline = await liveConnectionsGauge(server, token);
      const listening = server.taskwarden.services.bus.openSubscriptions;
      for (let i = 0; i < CYCLES; i++) await sseSubscribeAndAbort(server, taskId, token);
      await until(async () => (await liveConnectionsGauge(server, token)) === baseline, 'the connections gauge to return to its baseline');
      await until(() => server.taskwarden.services.bus.openSubscriptions === listening, 'every subscription to stop listening on the bus');
      await sseSubscribeAndAbort(server, taskId, token);
      await subscribeAndClose(server, taskId, token);
    } finally {
      await server.stop();
    }
  }, SLOW);

  it(`does not lock every anonymous client out in open mode: ${CYCLES} cycles without a token`, async () => {
    const open = await openTestDatabase(kind);
    const server = await startTestServer(open);
    try {
      const taskId = await quietTask(server);
      const baseline = await liveConnectionsGauge(server);
      const listening = server.taskwarden.services.bus.openSubscriptions;
      for (let i = 0; i < CYCLES; i++) await subscribeAndClose(server, taskId);
      await until(async () => (await liveConnectionsGauge(server)) === baseline, 'the connections gauge to return to its baseline');
      await until(() => server.taskwarden.services.bus.openSubscriptions === listening, 'every subscription to stop listening on the bus');
      const next = wsClient(server);
      expect(await connection(next)).toBe('connected');
      await next.dispose();
    } finally {
      await server.stop();
      await open.close();
    }
  }, SLOW);
});
