import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { databaseKinds, openTestDatabase, type TestDatabase, useTestDatabase } from './support/databases.js';
import { post } from './support/http.js';
import { createTokenService } from '../src/auth/tokens.js';
import { systemClock } from '../src/clock.js';
import { createEventBus } from '../src/events.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Authentication, open mode and live-connection slots (issue 10, items 1-3, 8, 9, 10a). */

/** Real servers and databases on a shared, loaded machine: generous, since nothing here asserts on speed. */
const SLOW = 180_000;

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
  const database = useTestDatabase(kind, { reset: false });

  const CYCLES = 210; // past the default MAX_CONNECTIONS_PER_TOKEN (200)

  it(
    `frees a token's slot when its WebSocket closes: ${CYCLES} open/subscribe/close cycles, then the next connection works`,
    async () => {
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
    },
    SLOW,
  );

  it(
    `frees an SSE stream's slot when the client goes away: ${CYCLES} cycles on one token`,
    async () => {
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
    },
    SLOW,
  );

  it(
    `does not lock every anonymous client out in open mode: ${CYCLES} cycles without a token`,
    async () => {
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
    },
    SLOW,
  );
});

/** A server as startTestServer makes it, reachable at 127.0.0.1 whatever HOST it listens on. */
async function serverOn(database: TestDatabase, env: Record<string, string> = {}): Promise<TestServer> {
  const server = await startTestServer(database, env);
  return { ...server, url: server.url.replace('//0.0.0.0:', '//127.0.0.1:') };
}

const viewer = async (server: TestServer, token?: string) => post(server.url, { query: '{ viewer { name role open } }' }, bearer(token));

describe.each(databaseKinds)('open mode is decided once, at start, and never reopens [%s]', (kind) => {
  it(
    'refuses to revoke the last admin token of a server beyond loopback (LAST_ADMIN_TOKEN), and stays closed',
    async () => {
      const database = await openTestDatabase(kind);
      // The first token of such a deployment is made before it listens beyond loopback (the CLI does it on the database).
      const bootstrap = await startTestServer(database);
      const { token: alice } = await bootstrap.taskwarden.services.tokens.create({ name: 'alice', role: 'admin', createdBy: 'cli' });
      await bootstrap.stop();

      const server = await serverOn(database, { HOST: '0.0.0.0' });
      try {
        const refused = await post(server.url, { query: 'mutation { revokeApiToken(name: "alice") { name } }' }, bearer(alice));
        expect(refused.json.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'LAST_ADMIN_TOKEN' }) })]);
        expect(refused.json.errors[0].message).toContain('last admin token');
        expect((await viewer(server)).status).toBe(401);
        expect((await viewer(server, alice)).json.data.viewer).toEqual({ name: 'alice', role: 'ADMIN', open: false });

        // With a second admin, either may go, but not both.
        const bob = (await post(server.url, { query: 'mutation { createApiToken(name: "bob", role: ADMIN) { token } }' }, bearer(alice))).json.data
          .createApiToken.token;
        expect((await post(server.url, { query: 'mutation { revokeApiToken(name: "alice") { name } }' }, bearer(bob))).json.data.revokeApiToken.name).toBe(
          'alice',
        );
        const last = await post(server.url, { query: 'mutation { revokeApiToken(name: "bob") { name } }' }, bearer(bob));
        expect(last.json.errors[0].extensions.code).toBe('LAST_ADMIN_TOKEN');
        expect((await viewer(server)).status).toBe(401);
        expect(await database.db.prisma.apiToken.count({ where: { role: 'ADMIN', revokedAt: null } })).toBe(1);
      } finally {
        await server.stop();
        await database.close();
      }
    },
    SLOW,
  );

  it(
    'keeps wanting a token on loopback once one existed: revoking every token does not make everyone admin, nor does a restart',
    async () => {
      const database = await openTestDatabase(kind);
      const server = await serverOn(database);
      try {
        expect((await viewer(server)).json.data.viewer).toEqual({ name: 'local', role: 'ADMIN', open: true });
        const admin = (await post(server.url, { query: 'mutation { createApiToken(name: "only", role: ADMIN) { token } }' })).json.data.createApiToken.token;
        // On loopback the last admin token may go (the CLI on the database makes a new one)...
        expect((await post(server.url, { query: 'mutation { revokeApiToken(name: "only") { name } }' }, bearer(admin))).json.data.revokeApiToken.name).toBe(
          'only',
        );
        // ...but the server does not reopen.
        const after = await viewer(server);
        expect(after.status).toBe(401);
        expect(after.json.errors[0].extensions.code).toBe('UNAUTHENTICATED');
        expect((await post(server.url, { query: 'mutation { createApiToken(name: "mine", role: ADMIN) { token } }' })).status).toBe(401);
      } finally {
        await server.stop();
      }
      const restarted = await serverOn(database);
      try {
        expect((await viewer(restarted)).status).toBe(401);
        expect(await database.db.prisma.apiToken.count({ where: { revokedAt: null } })).toBe(0);
      } finally {
        await restarted.stop();
        await database.close();
      }
    },
    SLOW,
  );
});

describe.each(databaseKinds)('the open-mode token check under load [%s]', (kind) => {
  it('asks the database once for a crowd of tokenless requests, and never answers older than the request', async () => {
    let counts = 0;
    const database = await openTestDatabase(kind, { onQuery: (sql) => void (/count\(/i.test(sql) && /"ApiToken"/.test(sql) && counts++) });
    const bus = createEventBus();
    const tokens = createTokenService({ prisma: database.db.prisma, clock: systemClock, bus });
    try {
      // 100 requests at once: the first starts a count, the 99 others share the one after it (never the
      // running one, which may have begun before they came).
      expect(await Promise.all(Array.from({ length: 100 }, () => tokens.everExisted()))).toEqual(Array(100).fill(false));
      expect(counts).toBe(2);

      // A token made elsewhere (another instance on this database) while a check is running: a request
      // that comes after it is made is told so.
      const running = tokens.everExisted();
      await createTokenService({ prisma: database.db.prisma, clock: systemClock, bus: createEventBus() }).create({
        name: 'elsewhere',
        role: 'admin',
        createdBy: 'test',
      });
      expect(await tokens.everExisted()).toBe(true);
      expect(await running).toBe(false);
    } finally {
      await tokens.stop();
      await database.close();
    }
  });
});

describe.each(databaseKinds)('the switch from open mode to tokens [%s]', (kind) => {
  it(
    'closes every open-mode WebSocket (4401) when the first token is made',
    async () => {
      const database = await openTestDatabase(kind);
      const server = await serverOn(database);
      try {
        const taskId = await quietTask(server);
        const client = wsClient(server);
        const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
        const first = new Promise((resolve, reject) =>
          client.subscribe({ query: quietSubscription(taskId) }, { next: resolve, error: reject, complete: () => {} }),
        );
        await first;
        const created = await post(server.url, { query: 'mutation { createApiToken(name: "first", role: ADMIN) { token } }' });
        expect(created.json.data.createApiToken.token).toMatch(/^tw_/);
        expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open after 20 s'), 20_000))])).toBe(4401);
        // A tokenless socket is now refused at connect.
        expect(await connection(wsClient(server))).toBe(4401);
      } finally {
        await server.stop();
        await database.close();
      }
    },
    SLOW,
  );

  it(
    'checks who a socket stands for at each operation, not only at connect: an open-mode socket stops working once a token exists elsewhere',
    async () => {
      // Two instances on one database without a shared event bus (no Redis): the second's token reaches the
      // first only through the database, so only the per-operation check can stop the first's open socket.
      const database = await openTestDatabase(kind);
      const a = await serverOn(database);
      const b = await serverOn(database);
      try {
        const client = wsClient(a);
        expect(await connection(client)).toBe('connected');
        const run = (query: string) =>
          new Promise<any>((resolve) => {
            let result: any;
            client.subscribe(
              { query },
              { next: (r) => (result = r), error: (e) => resolve({ errors: Array.isArray(e) ? e : [e] }), complete: () => resolve(result) },
            );
          });
        expect((await run('{ viewer { name open } }')).data.viewer).toEqual({ name: 'local', open: true });
        await post(b.url, { query: 'mutation { createApiToken(name: "made-on-b", role: ADMIN) { token } }' });
        let outcome: any;
        await until(
          async () => {
            outcome = await Promise.race([
              run('mutation { createApiToken(name: "sneaky", role: ADMIN) { token } }'),
              new Promise((r) => setTimeout(() => r('no answer'), 2000)),
            ]);
            return outcome === 'no answer' || Boolean(outcome?.errors);
          },
          'the open socket to be refused',
          15_000,
        );
        expect(await database.db.prisma.apiToken.count({ where: { name: 'sneaky' } })).toBe(0);
        await client.dispose();
      } finally {
        await a.stop();
        await b.stop();
        await database.close();
      }
    },
    SLOW,
  );
});

describe('an SSE stream past the per-token limit', () => {
  it(
    'answers HTTP 429 with LIMIT_EXCEEDED, not 500',
    async () => {
      const database = await openTestDatabase('pglite');
      const server = await serverOn(database, { MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS: '1' });
      try {
        const taskId = await quietTask(server);
        const held = new AbortController();
        const first = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query: quietSubscription(taskId) }),
          signal: held.signal,
        });
        expect(first.status).toBe(200);
        const reader = first.body!.getReader();
        for (let text = ''; !text.includes('CREATED');) text += new TextDecoder().decode((await reader.read()).value);

        const second = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query: quietSubscription(taskId) }),
        });
        const body = await second.text();
        expect(second.status).toBe(429);
        expect(body).toContain('LIMIT_EXCEEDED');
        expect(body).not.toContain('INTERNAL_SERVER_ERROR');
        held.abort();
        await reader.cancel().catch(() => {});
      } finally {
        await server.stop();
        await database.close();
      }
    },
    SLOW,
  );
});

describe('failed authentications', () => {
  const database = useTestDatabase('pglite', { reset: false });
  let server: TestServer;
  let good: string;
  beforeAll(async () => {
    server = await serverOn(database, { AUTH_FAILURES_PER_MINUTE: '5' });
    good = (await server.taskwarden.services.tokens.create({ name: 'good', role: 'viewer', createdBy: 'test' })).token;
  }, SLOW);
  afterAll(() => server.stop());

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const secret = () => randomUUID().replace(/-/g, '').padEnd(43, 'x').slice(0, 43);
  async function timed(run: () => Promise<unknown>) {
    const started = process.hrtime.bigint();
    await run();
    return Number(process.hrtime.bigint() - started) / 1e6;
  }

  it(
    'costs the same whether or not the token id exists (same-run ratio of medians, interleaved)',
    async () => {
      const tokens = server.taskwarden.services.tokens;
      const knownId = good.slice(3, 15); // tw_<12-character id>_<secret>; both parts may hold '_'
      const unknownId = () => randomUUID().replace(/-/g, '').slice(0, 12);
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 15; i++) {
        // A fresh secret each time, so no cached failure answers for it.
        known.push(await timed(async () => expect(await tokens.verify(`tw_${knownId}_${secret()}`)).toBeNull()));
        unknown.push(await timed(async () => expect(await tokens.verify(`tw_${unknownId()}_${secret()}`)).toBeNull()));
      }
      // Before, a known id cost a scrypt (tens of ms) and an unknown one only a lookup: a ratio of 10 or more.
      expect(median(known) / median(unknown)).toBeLessThan(3);
    },
    SLOW,
  );

  it(
    'remembers a failure briefly: repeating a wrong token costs no second scrypt (same-run ratio)',
    async () => {
      const tokens = server.taskwarden.services.tokens;
      const knownId = good.slice(3, 15); // tw_<12-character id>_<secret>; both parts may hold '_'
      const first: number[] = [];
      const again: number[] = [];
      for (let i = 0; i < 9; i++) {
        const wrong = `tw_${knownId}_${secret()}`;
        first.push(await timed(() => tokens.verify(wrong)));
        again.push(await timed(() => tokens.verify(wrong)));
      }
      expect(median(again) * 5).toBeLessThan(median(first));
    },
    SLOW,
  );

  it(
    'refuses an address with RATE_LIMITED (HTTP 429, Retry-After; WebSocket 4429) past AUTH_FAILURES_PER_MINUTE failures',
    async () => {
      expect((await viewer(server, good)).json.data.viewer.name).toBe('good');
      // A request without a token is not a guess: a dashboard that has none yet is not locked out.
      for (let i = 0; i < 8; i++) expect((await viewer(server)).status).toBe(401);
      for (let i = 0; i < 5; i++) {
        const wrong = await viewer(server, `tw_${randomUUID().slice(0, 12)}_${secret()}`);
        expect(wrong.status).toBe(401);
        expect(wrong.json.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      }
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer tw_${'a'.repeat(12)}_${secret()}` },
        body: JSON.stringify({ query: '{ viewer { name } }' }),
      });
      expect(response.status).toBe(429);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      const body = await response.json();
      expect(body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
      expect(await connection(wsClient(server, `tw_${'b'.repeat(12)}_${secret()}`))).toBe(4429);
      // A token this server verified lately still works from the same address.
      expect((await viewer(server, good)).json.data.viewer.name).toBe('good');
      const ws = wsClient(server, good);
      expect(await connection(ws)).toBe('connected');
      await ws.dispose();
    },
    SLOW,
  );
});

describe('forged audit actors', () => {
  it(
    "refuses the history's own actor names as worker ids (BAD_USER_INPUT), over startTask and claimTask, and writes nothing",
    async () => {
      const database = await openTestDatabase('pglite');
      const server = await serverOn(database);
      try {
        const { token } = await server.taskwarden.services.tokens.create({ name: 'ci-runner', role: 'worker', createdBy: 'test' });
        const id = (await post(server.url, { query: 'mutation { createTask(input: { name: "audited", kind: "audit" }) { id } }' }, bearer(token))).json.data
          .createTask.id;
        for (const workerId of ['operator', 'monitor', 'api', 'cli', 'scheduler', 'Operator', ' monitor ']) {
          for (const query of [
            `mutation { startTask(id: "${id}", workerId: ${JSON.stringify(workerId)}) { leaseToken } }`,
            `mutation { claimTask(workerId: ${JSON.stringify(workerId)}, kinds: ["audit"]) { leaseToken } }`,
          ]) {
            const { json } = await post(server.url, { query }, bearer(token));
            expect(json.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'workerId' });
          }
        }
        const { json } = await post(server.url, { query: `{ task(id: "${id}") { status events { type actor } } }` }, bearer(token));
        expect(json.data.task).toEqual({ status: 'PENDING', events: [{ type: 'CREATED', actor: 'ci-runner' }] });
        const started = await post(server.url, { query: `mutation { startTask(id: "${id}", workerId: "operator-7") { leaseToken } }` }, bearer(token));
        expect(started.json.data.startTask.leaseToken).toEqual(expect.any(String));
      } finally {
        await server.stop();
        await database.close();
      }
    },
    SLOW,
  );
});
