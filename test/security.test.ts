import { createClient } from 'graphql-ws';
import { getIntrospectionQuery } from 'graphql';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { roles, can, type Permission, type Role } from '../src/auth/roles.js';
import { loadConfig } from '../src/config.js';
import { startTaskwarden } from '../src/server/taskwarden.js';
import { schema } from '../src/graphql/index.js';
import pino from 'pino';
import { openTestDatabase, useTestDatabase } from './support/databases.js';
import { post } from './support/http.js';
import { startTestServer, useTestServer } from './support/server.js';

const ID = '00000000-0000-4000-8000-000000000000';

/** Every root field, the permission it needs, and a call that reaches its resolver. */
/** `answer`: the error code an allowed caller gets from the resolver itself (the task does not exist), if any. */
const operations: Record<string, { permission: Permission; query: string; kind?: 'subscription'; answer?: string }> = {
  'Query.task': { permission: 'read', query: `{ task(id: "${ID}") { id } }` },
  'Query.tasks': { permission: 'read', query: `{ tasks { totalCount } }` },
  'Query.stuckTasks': { permission: 'read', query: `{ stuckTasks { id } }` },
  'Query.taskEvents': { permission: 'read', query: `{ taskEvents { id } }` },
  'Query.taskStats': { permission: 'read', query: `{ taskStats { total } }` },
  'Query.taskOutcomes': { permission: 'read', query: `{ taskOutcomes { completed } }` },
  'Query.monitor': { permission: 'read', query: `{ monitor { enabled } }` },
  'Query.viewer': { permission: 'read', query: `{ viewer { name } }` },
  'Query.apiTokens': { permission: 'admin', query: `{ apiTokens { name } }` },
  'Query.alerts': { permission: 'read', query: `{ alerts { id } }` },
  'Query.queues': { permission: 'read', query: `{ queues { kind } }` },
  'Mutation.createTask': { permission: 'submit', query: `mutation { createTask(input: { name: "x" }) { id } }` },
  'Mutation.createTasks': { permission: 'submit', query: `mutation { createTasks(inputs: [{ name: "x" }, { name: "y", dependsOnIndex: [0] }]) { id } }` },
  'Mutation.setKindLimit': { permission: 'operate', query: `mutation { setKindLimit(kind: "made-by-test", maxRunning: 2) { limit } }` },
  'Mutation.pauseKind': { permission: 'operate', query: `mutation { pauseKind(kind: "made-by-test") { paused } }` },
  'Mutation.resumeKind': { permission: 'operate', query: `mutation { resumeKind(kind: "made-by-test") { paused } }` },
  'Mutation.startTask': { permission: 'work', query: `mutation { startTask(id: "${ID}", workerId: "w") { leaseToken } }`, answer: 'NOT_FOUND' },
  'Mutation.claimTask': { permission: 'work', query: `mutation { claimTask(workerId: "w", kinds: ["nothing-pending"]) { leaseToken } }` },
  'Mutation.reportProgress': { permission: 'work', query: `mutation { reportProgress(id: "${ID}", leaseToken: "l") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.reportProgressBatch': {
    permission: 'work',
    query: `mutation { reportProgressBatch(reports: [{ id: "${ID}", leaseToken: "l" }]) { id accepted code } }`,
  },
  'Mutation.completeTask': { permission: 'work', query: `mutation { completeTask(id: "${ID}", leaseToken: "l") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.failTask': { permission: 'work', query: `mutation { failTask(id: "${ID}", leaseToken: "l", error: "e") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.releaseTask': { permission: 'work', query: `mutation { releaseTask(id: "${ID}", leaseToken: "l") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.stopTask': { permission: 'operate', query: `mutation { stopTask(id: "${ID}") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.forceComplete': { permission: 'operate', query: `mutation { forceComplete(id: "${ID}") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.deleteTask': { permission: 'operate', query: `mutation { deleteTask(id: "${ID}") }`, answer: 'NOT_FOUND' },
  'Mutation.cleanupStuck': { permission: 'operate', query: `mutation { cleanupStuck { autoFix } }` },
  'Mutation.runMonitorSweep': { permission: 'operate', query: `mutation { runMonitorSweep { ran } }` },
  'Mutation.createApiToken': { permission: 'admin', query: `mutation { createApiToken(name: "made-by-test", role: VIEWER) { token } }` },
  'Mutation.retryAlert': { permission: 'operate', query: `mutation { retryAlert(id: "999999") { id } }`, answer: 'NOT_FOUND' },
  'Mutation.revokeApiToken': { permission: 'admin', query: `mutation { revokeApiToken(name: "no-such-token") { name } }`, answer: 'NOT_FOUND' },
  'Subscription.taskUpdated': { permission: 'read', query: `subscription { taskUpdated { id } }`, kind: 'subscription' },
  'Subscription.taskProgress': { permission: 'read', query: `subscription { taskProgress(id: "${ID}") { id } }`, kind: 'subscription', answer: 'NOT_FOUND' },
  'Subscription.stuckTaskDetected': { permission: 'read', query: `subscription { stuckTaskDetected { reason } }`, kind: 'subscription' },
};

describe('access control', () => {
  const token: Partial<Record<Role, string>> = {};

  const database = useTestDatabase('pglite', { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    for (const role of roles) token[role] = (await server.taskwarden.services.tokens.create({ name: `${role}-token`, role, createdBy: 'test' })).token;
  });

  const as = (role: Role): Record<string, string> => ({ authorization: `Bearer ${token[role]}` });

  it('covers every root field of the schema in the permission table below', () => {
    const fields = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) =>
      Object.keys(type!.getFields()).map((name) => `${type!.name}.${name}`),
    );
    expect(fields.sort()).toEqual(Object.keys(operations).sort());
  });

  for (const [field, { permission, query, kind, answer }] of Object.entries(operations)) {
    for (const role of roles) {
      const allowed = can(role, permission);
      it(`${field} as ${role}: ${allowed ? 'allowed' : 'FORBIDDEN'}`, async () => {
        if (kind === 'subscription') {
          const bus = server.taskwarden.services.bus;
          const baseline = bus.openSubscriptions;
          // Allowed: the subscription is open on the server. Refused: FORBIDDEN, however long it takes.
          const code = await subscribeOnce(server.url, query, token[role]!, () => bus.openSubscriptions > baseline);
          // Closed again before the next test takes its baseline.
          await until(() => bus.openSubscriptions <= baseline);
          expect(code).toBe(allowed ? (answer ?? 'OPEN') : 'FORBIDDEN');
          return;
        }
        const { status, json } = await post(server.url, { query }, as(role));
        const codes = (json.errors ?? []).map((e: any) => e.extensions?.code);
        if (allowed) {
          // The resolver ran: data, and no error but the one the resolver itself gives (no UNAUTHENTICATED, no internal error).
          expect(status).toBe(200);
          expect(codes).toEqual(answer ? [answer] : []);
          expect(json.data).toBeDefined();
        } else expect(json.errors).toEqual([expect.objectContaining({ extensions: { code: 'FORBIDDEN', role, requestId: expect.any(String) } })]);
      });
    }
  }

  it('asks for a token once any exists: none, malformed or unknown gets 401 UNAUTHENTICATED', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Basic abc' },
      { authorization: 'Bearer tw_nope_nope' },
      { authorization: `Bearer ${token.admin}x` },
    ]) {
      const { status, json } = await post(server.url, { query: '{ viewer { name } }' }, headers);
      expect(status).toBe(401);
      expect(json.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    const { json } = await post(server.url, { query: '{ viewer { name role open } }' }, as('operator'));
    expect(json.data.viewer).toEqual({ name: 'operator-token', role: 'OPERATOR', open: false });
  });

  it("records the token's name as the actor of an operator action", async () => {
    const { json: created } = await post(server.url, { query: 'mutation { createTask(input: { name: "audited" }) { id } }' }, as('worker'));
    const id = created.data.createTask.id;
    await post(server.url, { query: `mutation { stopTask(id: "${id}", reason: "not needed") { id } }` }, as('operator'));
    const { json } = await post(server.url, { query: `{ task(id: "${id}") { events { type actor } } }` }, as('viewer'));
    expect(json.data.task.events).toEqual([
      { type: 'CREATED', actor: 'worker-token' },
      { type: 'CANCELLED', actor: 'operator-token' },
    ]);
  });

  it("keeps a worker out of another worker's task: its lease does not fit", async () => {
    const { json: a } = await post(server.url, { query: 'mutation { createTask(input: { name: "a" }) { id } }' }, as('worker'));
    const { json: b } = await post(server.url, { query: 'mutation { createTask(input: { name: "b" }) { id } }' }, as('worker'));
    const lease = async (id: string, worker: string) =>
      (await post(server.url, { query: `mutation { startTask(id: "${id}", workerId: "${worker}") { leaseToken } }` }, as('worker'))).json.data.startTask
        .leaseToken;
    await lease(a.data.createTask.id, 'w-a');
    const leaseOfB = await lease(b.data.createTask.id, 'w-b');
    const { json } = await post(
      server.url,
      { query: `mutation { completeTask(id: "${a.data.createTask.id}", leaseToken: "${leaseOfB}") { id } }` },
      as('worker'),
    );
    expect(json.errors[0].extensions.code).toBe('LEASE_MISMATCH');
  });

  it('closes the live connections of a token the moment it is revoked', async () => {
    const { token: doomed } = await server.taskwarden.services.tokens.create({ name: 'doomed', role: 'viewer', createdBy: 'test' });
    const client = createClient({
      url: server.url.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${doomed}` },
      retryAttempts: 0,
    });
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    const connected = new Promise((resolve) => client.on('connected', resolve));
    client.subscribe({ query: 'subscription { taskUpdated { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    await connected;

    const controller = new AbortController();
    const sse = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${doomed}` },
      body: JSON.stringify({ query: 'subscription { stuckTaskDetected { reason } }' }),
      signal: controller.signal,
    });
    const reader = sse.body!.getReader();
    const read = (async () => {
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += new TextDecoder().decode(value);
        if (text.includes('UNAUTHENTICATED')) return text;
      }
    })();

    const { json } = await post(server.url, { query: 'mutation { revokeApiToken(name: "doomed") { name revokedAt } }' }, as('admin'));
    expect(json.data.revokeApiToken.revokedAt).toEqual(expect.any(String));
    expect(await closed).toBe(4401);
    expect(await read).toContain('token revoked');
    controller.abort();
    await client.dispose();
    expect((await post(server.url, { query: '{ viewer { name } }' }, { authorization: `Bearer ${doomed}` })).status).toBe(401);
  });

  it('lists tokens without their secrets, and stores none in clear', async () => {
    const { json } = await post(server.url, { query: '{ apiTokens { name role source revokedAt } }' }, as('admin'));
    expect(json.data.apiTokens).toEqual(expect.arrayContaining([{ name: 'admin-token', role: 'ADMIN', source: 'database', revokedAt: null }]));
    const rows = await database.db.prisma.apiToken.findMany();
    const secret = token.admin!.slice(-43);
    for (const row of rows) expect(JSON.stringify(row)).not.toContain(secret);
  });
});

describe('zero-config access', () => {
  it('is open to all on loopback while no token exists, and closed once one does', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database);
    expect((await post(server.url, { query: '{ viewer { name role open } }' })).json.data.viewer).toEqual({ name: 'local', role: 'ADMIN', open: true });
    const created = (await post(server.url, { query: 'mutation { createApiToken(name: "first", role: ADMIN) { token apiToken { name } } }' })).json.data
      .createApiToken;
    expect(created.token).toMatch(/^tw_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
    await new Promise((r) => setTimeout(r, 50));
    expect((await post(server.url, { query: '{ viewer { name } }' })).status).toBe(401);
    expect((await post(server.url, { query: '{ viewer { name } }' }, { authorization: `Bearer ${created.token}` })).json.data.viewer.name).toBe('first');
    await server.stop();
    await database.close();
  });

  it('refuses to listen beyond loopback without a token, and starts with one from TASKWARDEN_TOKENS', async () => {
    const database = await openTestDatabase('pglite');
    const log = pino({ level: 'silent' });
    await expect(startTaskwarden({ config: loadConfig({ PORT: '0', HOST: '0.0.0.0', MONITOR_ENABLED: 'false' }), log, db: database.db })).rejects.toMatchObject(
      {
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('npx taskwarden token create --role admin'),
      },
    );
    const secret = 'a-long-enough-secret-from-the-orchestrator';
    const server = await startTaskwarden({
      config: loadConfig({ PORT: '0', HOST: '0.0.0.0', MONITOR_ENABLED: 'false', TASKWARDEN_TOKENS: `deployer:operator:${secret}` }),
      log,
      db: database.db,
    });
    const url = server.url.replace('0.0.0.0', '127.0.0.1');
    expect((await post(url, { query: '{ viewer { name role } }' }, { authorization: `Bearer ${secret}` })).json.data.viewer).toEqual({
      name: 'deployer',
      role: 'OPERATOR',
    });
    expect((await post(url, { query: '{ viewer { name } }' })).status).toBe(401);
    await server.stop();
    await database.close();
  });
});

describe('connection limits', () => {
  it('caps subscriptions per connection, and connections without a token per address', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, { MAX_SUBSCRIPTIONS_PER_CONNECTION: '2', MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS: '2' });
    const ws = () => createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {} });
    const first = ws();
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i++)
      first.subscribe({ query: 'subscription { taskUpdated { id } }' }, { next: () => {}, error: (e) => errors.push(e), complete: () => {} });
    await until(() => errors.length === 1);
    expect(JSON.stringify(errors[0])).toContain('LIMIT_EXCEEDED');

    const second = ws();
    await new Promise((resolve) => second.on('connected', resolve));
    const third = ws();
    const code = await new Promise<number>((resolve) => third.on('closed', (event) => resolve((event as { code: number }).code)));
    expect(code).toBe(4403);
    await Promise.all([first.dispose(), second.dispose(), third.dispose()]);
    await server.stop();
    await database.close();
  });

  it('applies the per-token cap to tokens only: connections without one are many by default', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, { MAX_CONNECTIONS_PER_TOKEN: '2', MAX_CONNECTIONS_PER_ADDRESS: '3' });
    // Past both the token cap and the TCP cap for other addresses: a loopback address gets the anonymous cap.
    const clients = Array.from({ length: 6 }, () =>
      createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {} }),
    );
    const outcomes = await Promise.all(
      clients.map(
        (client) =>
          new Promise<string>((resolve) => {
            client.on('connected', () => resolve('connected'));
            client.on('closed', (event) => resolve(`closed ${(event as { code?: number }).code}`));
          }),
      ),
    );
    expect(outcomes).toEqual(Array(6).fill('connected'));
    await Promise.all(clients.map((client) => client.dispose()));
    await server.stop();
    await database.close();
  });
});

describe('hostile and malformed requests', () => {
  const database = useTestDatabase('pglite', { reset: false });
  const server = useTestServer(database);
  beforeEach(async () => {
    expect((await fetch(server.url.replace('/graphql', '/health'))).status).toBe(200);
  });

  const nested = (depth: number) => `{ tasks { edges { node { ${'events { task { '.repeat(depth)} id ${'} } '.repeat(depth)} } } } }`;

  it.each([
    ['101 aliases', { query: `{ ${Array.from({ length: 101 }, (_, i) => `a${i}: monitor { enabled }`).join(' ')} }` }, /aliases/i],
    ['__typename 500 times', { query: `{ ${'__typename '.repeat(500)} }` }, /selected more than 3 times/i],
    ['directive overloading', { query: `{ monitor ${'@include(if: true) '.repeat(60)} { enabled } }` }, /directive/i],
    ['a query nested 50 deep', { query: nested(25) }, /depth/i],
    ['circular introspection', { query: `{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }` }, /depth/i],
  ])('rejects %s with a clear error', async (_name, body, message) => {
    const { status, json } = await post(server.url, body);
    expect(status).toBeLessThan(500);
    expect(json.data ?? null).toBeNull();
    expect(json.errors[0].message).toMatch(message);
    expect(json.errors[0].extensions.code).toEqual(expect.any(String));
  });

  it('rejects batched queries', async () => {
    const { status, text } = await post(server.url, [{ query: '{ monitor { enabled } }' }, { query: '{ monitor { enabled } }' }]);
    expect(status).toBe(400);
    expect(text).not.toMatch(/"enabled"/);
  });

  it('refuses mutations over GET', async () => {
    const url = `${server.url}?query=${encodeURIComponent('mutation { createTask(input: { name: "via GET" }) { id } }')}`;
    const response = await fetch(url, { headers: { accept: 'application/json' } });
    expect(response.status).toBe(405);
    expect(await database.db.prisma.task.count()).toBe(0);
  });

  it('refuses a form-encoded POST (the kind a hostile page can send cross-site)', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `query=${encodeURIComponent('mutation { createTask(input: { name: "csrf" }) { id } }')}`,
    });
    expect(response.status).toBe(415);
    expect(await database.db.prisma.task.count()).toBe(0);
  });

  it('refuses a 10 MB body before reading it', async () => {
    const { status, json } = await post(server.url, { query: '{ monitor { enabled } }', variables: { pad: 'x'.repeat(10 * 1024 * 1024) } });
    expect(status).toBe(413);
    expect(json.errors[0].message).toContain('MAX_BODY_BYTES');
  });

  it('passes the GraphQL-over-HTTP compliance audit (graphql-http serverAudits)', async () => {
    const { serverAudits } = await import('graphql-http');
    const results = await Promise.all(serverAudits({ url: server.url }).map(async (audit) => ({ ...(await audit.fn()), name: audit.name })));
    const notOk = results.filter((r) => r.status !== 'ok');
    expect(notOk.map((r) => `${r.status} ${r.name}: ${'reason' in r ? r.reason : ''}`)).toEqual([]);
    expect(results.length).toBeGreaterThan(50);
  });
});

describe('production hygiene', () => {
  it('turns introspection and field suggestions off with NODE_ENV=production, unless enabled', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, { NODE_ENV: 'production' });
    const introspection = await post(server.url, { query: getIntrospectionQuery() });
    expect(introspection.json.data ?? null).toBeNull();
    const typo = await post(server.url, { query: '{ monitr { enabled } }' });
    expect(typo.text).not.toMatch(/Did you mean/);
    await server.stop();
    const open = await startTestServer(database, { NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' });
    expect((await post(open.url, { query: '{ __schema { queryType { name } } }' })).json.data.__schema.queryType.name).toBe('Query');
    await open.stop();
    await database.close();
  });
});

/** Subscribes over SSE and returns the first error code, or 'OK' once the stream is open and quiet. */
/** Subscribes over SSE until the server answers with an error code, or `opened()` says the subscription is live ('OPEN'). */
async function subscribeOnce(url: string, query: string, token: string, opened: () => boolean): Promise<string> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  let text = '';
  let done = false;
  const reading = (async () => {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return;
      text += new TextDecoder().decode(chunk.value);
    }
  })()
    .catch(() => {})
    .finally(() => (done = true));
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const code = /"code":"([A-Z_]+)"/.exec(text);
      if (code) return code[1]!;
      if (opened()) return 'OPEN';
      if (done) return `CLOSED: ${text}`;
      if (Date.now() > deadline) return `NO ANSWER: ${text}`;
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    controller.abort();
    await reading;
  }
}

async function until(check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
