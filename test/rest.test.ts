import { beforeAll, expect, it } from 'vitest';
import { can, roles, type Permission, type Role } from '../src/auth/roles.js';
import { schema } from '../src/graphql/index.js';
import { TaskStatus } from '../src/tasks/model.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { asRest, restClient, TASK_FIELDS } from './support/rest.js';
import { useTestServer } from './support/server.js';
import { snapshot, taskIn } from './support/tasks.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const STATS_FIELDS = `since total pending running completed failed cancelled stuck successRate averageDurationSeconds
  oldestRunning { ${TASK_FIELDS} } byKind { kind total pending running completed failed cancelled successRate }`;

describeEachDatabase('REST API, open on loopback [%s]', (kind) => {
  let rest: ReturnType<typeof restClient>['call'];

  const database = useTestDatabase(kind);
  const server = useTestServer(database, { HEARTBEAT_TIMEOUT: '60m', STALL_TIMEOUT: '60m' });
  beforeAll(async () => {
    rest = restClient(server.url).call;
  });

  const tasks = () => server.taskwarden.services.tasks;
  /** A running task whose worker reported 90% "saving results" and then went silent for `minutes`. */
  async function silentFor(minutes: number, name = 'SMA cross AAPL 2015-2024') {
    const { task, leaseToken } = await taskIn(tasks(), TaskStatus.RUNNING, name);
    await tasks().reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    server.clock.advance(minutes * 60_000);
    return task;
  }

  it('lists a stuck task with its reason, as stuckTasks does', async () => {
    const stuck = await silentFor(45);
    await silentFor(10, 'still fine'); // so the first one has been silent for 55 minutes
    const answer = await rest('GET', '/api/v1/tasks/monitor/stuck?timeout_minutes=30');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      timeout_minutes: 30,
      count: 1,
      tasks: [
        {
          id: stuck.id,
          status: 'running',
          progress: 90,
          message: 'saving results',
          worker_id: 'worker-a',
          stuck_reason: 'no_heartbeat',
          stuck_for_seconds: 3300,
          is_stuck: true,
        },
      ],
    });
    const twin = await server.ok(`{ stuckTasks(timeoutMinutes: 30) { ${TASK_FIELDS} } }`);
    expect(answer.json.tasks).toEqual(asRest(twin.stuckTasks));
    // The seed's default timeout is 30 minutes, as in GraphQL.
    expect((await rest('GET', '/api/v1/tasks/monitor/stuck')).json).toEqual(answer.json);
    expect((await rest('GET', '/api/v1/tasks/monitor/stuck?timeout_minutes=60')).json).toMatchObject({ count: 0, tasks: [] });
  });

  it('cleans up: without auto_fix it changes nothing, with it it cancels, as cleanupStuck does', async () => {
    const stuck = await silentFor(45);
    const before = await snapshot(database.db.prisma, stuck.id);
    const preview = await rest('POST', '/api/v1/tasks/monitor/cleanup?timeout_minutes=30');
    expect(preview.status).toBe(200);
    expect(preview.json).toMatchObject({
      auto_fix: false,
      action: 'cancel',
      timeout_minutes: 30,
      found: [{ id: stuck.id, stuck_reason: 'no_heartbeat' }],
      fixed: [],
    });
    expect(await snapshot(database.db.prisma, stuck.id)).toEqual(before);
    const twin = await server.ok(
      `mutation { cleanupStuck(timeoutMinutes: 30) { autoFix action timeoutMinutes found { ${TASK_FIELDS} } fixed { ${TASK_FIELDS} } } }`,
    );
    expect(preview.json).toEqual(asRest(twin.cleanupStuck));

    const fixed = await rest('POST', '/api/v1/tasks/monitor/cleanup?timeout_minutes=30&auto_fix=true');
    expect(fixed.status).toBe(200);
    expect(fixed.json).toMatchObject({ auto_fix: true, found: [{ id: stuck.id }], fixed: [{ id: stuck.id, status: 'cancelled', is_stuck: false }] });
    const history = (await snapshot(database.db.prisma, stuck.id)).events.at(-1);
    expect(history).toMatchObject({ type: 'CANCELLED', actor: 'operator', reason: 'NO_HEARTBEAT' });
  });

  it('force-completes a running task as failed or as cancelled, as forceComplete does', async () => {
    const a = await silentFor(5, 'a');
    const b = await silentFor(5, 'b');
    const c = await silentFor(5, 'c');
    const failed = await rest('POST', `/api/v1/tasks/monitor/force-complete/${a.id}?status=failed&reason=${encodeURIComponent('stuck at 90%')}`);
    expect(failed.status).toBe(200);
    expect(failed.json).toMatchObject({ id: a.id, status: 'failed', error: 'stuck at 90%', progress: 90, params: { strategy: 'sma-cross', symbol: 'AAPL' } });
    const cancelled = await rest('POST', `/api/v1/tasks/monitor/force-complete/${b.id}?status=cancelled`);
    expect(cancelled.json).toMatchObject({ id: b.id, status: 'cancelled', error: null });
    expect((await rest('POST', `/api/v1/tasks/monitor/force-complete/${c.id}`)).json.status).toBe('cancelled');
    expect((await snapshot(database.db.prisma, a.id)).events.at(-1)).toMatchObject({ type: 'FAILED', actor: 'operator', reason: 'stuck at 90%' });

    const twin = await server.ok(`query($id: ID!) { task(id: $id) { ${TASK_FIELDS} params result } }`, { id: b.id });
    expect(cancelled.json).toEqual(asRest(twin.task));

    const again = await rest('POST', `/api/v1/tasks/monitor/force-complete/${b.id}?status=failed`);
    expect(again.status).toBe(409);
    expect(again.json).toEqual({
      error: {
        code: 'INVALID_TRANSITION',
        message: `Cannot force-complete task ${b.id}: it is CANCELLED.`,
        status: 'cancelled',
        request_id: expect.any(String),
      },
    });
    const completed = await rest('POST', `/api/v1/tasks/monitor/force-complete/${c.id}?status=completed`);
    expect(completed.status).toBe(400);
    expect(completed.json.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'status' });
  });

  it('refuses to delete a running task with 409 and the GraphQL refusal text; the task stays', async () => {
    const { task } = await taskIn(tasks(), TaskStatus.RUNNING);
    const refused = await rest('DELETE', `/api/v1/tasks/${task.id}`);
    expect(refused.status).toBe(409);
    const twin = await server.gql(`mutation($id: ID!) { deleteTask(id: $id) }`, { id: task.id });
    expect(refused.json.error).toMatchObject({ code: 'TASK_NOT_TERMINAL', status: 'running', message: twin.errors![0]!.message });
    expect(refused.json.error.message).toBe(`Task ${task.id} is RUNNING: stop or force-complete it first, then delete it.`);
    expect((await rest('GET', `/api/v1/tasks/${task.id}`)).json.status).toBe('running');

    const stopped = await rest('POST', `/api/v1/tasks/${task.id}/stop?reason=operator%20asked`);
    expect(stopped.json).toMatchObject({ id: task.id, status: 'cancelled' });
    expect((await snapshot(database.db.prisma, task.id)).events.at(-1)).toMatchObject({ type: 'CANCELLED', reason: 'operator asked' });
    const deleted = await rest('DELETE', `/api/v1/tasks/${task.id}`);
    expect(deleted).toMatchObject({ status: 200, json: { id: task.id, deleted: true } });
    expect((await rest('GET', `/api/v1/tasks/${task.id}`)).status).toBe(404);
  });

  it('answers statistics equal to taskStats and monitor', async () => {
    for (const status of [TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]) {
      await taskIn(tasks(), status);
      server.clock.advance(90_000);
    }
    await silentFor(61);
    await server.ok(`mutation { runMonitorSweep { ran } }`);
    const answer = await rest('GET', '/api/v1/tasks/monitor/statistics');
    expect(answer.status).toBe(200);
    const twin =
      await server.ok(`{ taskStats { ${STATS_FIELDS} } monitor { enabled running intervalSeconds timeoutMinutes action nextSweepAt consecutiveFailures lastError
      lastSweepAt lastSweepDurationMs lastSweepScanned lastSweepFound lastSweepFixed } }`);
    const { monitor, ...stats } = answer.json;
    expect(stats).toEqual(asRest(twin.taskStats));
    expect(stats).toMatchObject({ total: 6, pending: 1, completed: 2, failed: 1, cancelled: 2, success_rate: 0.4 });
    const { last_sweep: sweep, ...settings } = monitor;
    const { lastSweepAt, lastSweepDurationMs, lastSweepScanned, lastSweepFound, lastSweepFixed, ...twinSettings } = twin.monitor;
    expect(settings).toEqual(asRest(twinSettings));
    expect(sweep).toMatchObject({
      started_at: lastSweepAt,
      duration_ms: lastSweepDurationMs,
      scanned: lastSweepScanned,
      found: lastSweepFound,
      fixed: lastSweepFixed,
      trigger: 'manual',
    });
    expect(settings).toMatchObject({ timeout_minutes: 60, action: 'cancel', enabled: false });
  });

  it('lists tasks newest first by status, kind and limit, as tasks does', async () => {
    for (let i = 0; i < 5; i++) {
      const { task } = await taskIn(tasks(), i % 2 ? TaskStatus.RUNNING : TaskStatus.PENDING, `bt ${i}`);
      if (i === 4) await database.db.prisma.task.update({ where: { id: task.id }, data: { kind: 'optimize' } });
      server.clock.advance(1000);
    }
    const answer = await rest('GET', '/api/v1/tasks?status=running,pending&kind=backtest&limit=2');
    expect(answer.status).toBe(200);
    const twin = await server.ok(`{ tasks(status: [RUNNING, PENDING], kind: "backtest", first: 2) { totalCount edges { node { ${TASK_FIELDS} } } } }`);
    expect(answer.json).toEqual({ total: twin.tasks.totalCount, tasks: asRest(twin.tasks.edges.map((e: { node: unknown }) => e.node)) });
    expect(answer.json.total).toBe(4);
    expect(answer.json.tasks.map((t: { name: string }) => t.name)).toEqual(['bt 3', 'bt 2']);
    expect((await rest('GET', '/api/v1/tasks?status=running')).json.tasks.map((t: { name: string }) => t.name)).toEqual(['bt 3', 'bt 1']);
    for (const query of ['status=stuck', 'limit=0', 'limit=101', 'limit=ten', 'colour=blue']) {
      const bad = await rest('GET', `/api/v1/tasks?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.json.error.code, query).toBe('BAD_USER_INPUT');
    }
  });

  it('answers a stale or unknown id with 404 and a malformed one with 400, as JSON, on every task route', async () => {
    const { task } = await taskIn(tasks(), TaskStatus.COMPLETED);
    await tasks().delete(task.id);
    const routes = [
      ['GET', '/api/v1/tasks/{id}'],
      ['POST', '/api/v1/tasks/{id}/stop'],
      ['DELETE', '/api/v1/tasks/{id}'],
      ['POST', '/api/v1/tasks/monitor/force-complete/{id}'],
    ] as const;
    for (const [method, path] of routes) {
      for (const id of [task.id, UNKNOWN_ID]) {
        const answer = await rest(method, path.replace('{id}', id));
        expect(answer.status, `${method} ${path}`).toBe(404);
        expect(answer.headers.get('content-type')).toBe('application/json');
        expect(answer.json).toEqual({ error: { code: 'NOT_FOUND', message: `Task ${id} does not exist.`, request_id: answer.headers.get('x-request-id') } });
      }
      const malformed = await rest(method, path.replace('{id}', 'not-a-task'));
      expect(malformed.status, `${method} ${path}`).toBe(400);
      expect(malformed.json.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'task_id' });
    }
  });

  it('refuses bad parameters with 400 and says which, changing nothing', async () => {
    const stuck = await silentFor(45);
    const before = await snapshot(database.db.prisma, stuck.id);
    for (const [path, field] of [
      ['/api/v1/tasks/monitor/cleanup?timeout_minutes=-1&auto_fix=true', 'timeout_minutes'],
      ['/api/v1/tasks/monitor/cleanup?timeout_minutes=abc&auto_fix=true', 'timeout_minutes'],
      ['/api/v1/tasks/monitor/cleanup?timeout_minutes=0&auto_fix=true', 'timeout_minutes'],
      ['/api/v1/tasks/monitor/cleanup?auto_fix=maybe', 'auto_fix'],
      ['/api/v1/tasks/monitor/cleanup?auto-fix=true', 'auto-fix'],
      ['/api/v1/tasks/monitor/cleanup?auto_fix=true&action=explode', 'action'],
    ] as const) {
      const answer = await rest('POST', path);
      expect(answer.status, path).toBe(400);
      expect(answer.json.error, path).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(answer.json.error.message, path).toMatch(new RegExp(`^${field}: `));
    }
    expect(await snapshot(database.db.prisma, stuck.id)).toEqual(before);
  });

  it('answers an unexpected failure with a bare 500 and never a stack trace', async () => {
    const stats = server.taskwarden.services.stats;
    const original = stats.taskStats;
    stats.taskStats = async () => {
      throw new Error('relation "Task" does not exist\n    at PrismaClient.queryRaw (secret.js:1:1)');
    };
    try {
      const answer = await rest('GET', '/api/v1/tasks/monitor/statistics');
      expect(answer.status).toBe(500);
      expect(answer.json).toEqual({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.', request_id: expect.any(String) } });
      expect(answer.text).not.toMatch(/relation|secret|    at /);
    } finally {
      stats.taskStats = original;
    }
  });

  it('answers paths that are no route with 404, and a wrong method with 405 naming the right one', async () => {
    const missing = await rest('GET', '/api/v1/tasks/monitor/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NOT_FOUND');
    const wrong = await rest('GET', '/api/v1/tasks/monitor/cleanup?timeout_minutes=30&auto_fix=true');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(wrong.json.error).toMatchObject({ code: 'METHOD_NOT_ALLOWED', message: 'GET is not allowed on /api/v1/tasks/monitor/cleanup: use POST.' });
  });

  it('counts REST calls in /metrics by route template, never by raw URL', async () => {
    const scrape = async () =>
      (await (await fetch(`${restClient(server.url).origin}/metrics`)).text()).split('\n').filter((line) => line.startsWith('taskwarden_rest_'));
    const count = (lines: string[], series: string) => Number(lines.find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
    const series = {
      found: 'taskwarden_rest_requests_total{method="GET",route="/api/v1/tasks/{task_id}",status="200"}',
      missing: 'taskwarden_rest_requests_total{method="GET",route="/api/v1/tasks/{task_id}",status="404"}',
      stuck: 'taskwarden_rest_requests_total{method="GET",route="/api/v1/tasks/monitor/stuck",status="200"}',
      unmatched: 'taskwarden_rest_requests_total{method="GET",route="unmatched",status="404"}',
      timed: 'taskwarden_rest_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{task_id}"}',
    };
    const before = await scrape();
    const { task } = await taskIn(tasks(), TaskStatus.RUNNING);
    await rest('GET', `/api/v1/tasks/${task.id}`);
    await rest('GET', `/api/v1/tasks/${UNKNOWN_ID}`);
    await rest('GET', `/api/v1/tasks/monitor/stuck?timeout_minutes=12345`);
    await rest('GET', `/api/v1/no/such/${task.id}`);
    const after = await scrape();
    const added = Object.fromEntries(Object.entries(series).map(([name, s]) => [name, count(after, s) - count(before, s)]));
    expect(added).toEqual({ found: 1, missing: 1, stuck: 1, unmatched: 1, timed: 2 });
    expect(after.join('\n')).not.toMatch(new RegExp(`${task.id}|${UNKNOWN_ID}|12345`));
  });
});

describeEachDatabase('REST API with tokens [%s]', (kind) => {
  let rest: ReturnType<typeof restClient>['call'];
  const token: Partial<Record<Role, string>> = {};

  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    rest = restClient(server.url).call;
    for (const role of roles) token[role] = (await server.taskwarden.services.tokens.create({ name: `${role}-token`, role, createdBy: 'test' })).token;
  });

  const document = async () => (await rest('GET', '/api/v1/openapi.json', token.viewer)).json;
  const operations = async () =>
    Object.entries((await document()).paths as Record<string, Record<string, { 'x-permission': Permission; 'x-graphql': string }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, permission: op['x-permission'], graphql: op['x-graphql'] })),
    );

  it('asks each route for the permission its GraphQL twin asks for', async () => {
    const fields = [schema.getQueryType()!, schema.getMutationType()!].flatMap((type) =>
      Object.values(type.getFields()).map((field) => [`${type.name}.${field.name}`, field] as const),
    );
    const authScopes = new Map<string, string[]>(fields.map(([name, field]) => [name, Object.keys((field.extensions as any).pothosOptions.authScopes)]));
    const ops = await operations();
    expect(ops).toHaveLength(8);
    for (const op of ops) {
      for (const twin of op.graphql.split(' + ')) expect(authScopes.get(twin), `${op.method} ${op.path} -> ${twin}`).toEqual([op.permission]);
    }
  });

  it('lets each role do exactly what its permissions allow, on every route', async () => {
    const { task } = await taskIn(server.taskwarden.services.tasks, TaskStatus.RUNNING);
    const before = await snapshot(database.db.prisma, task.id);
    for (const op of await operations()) {
      for (const role of roles) {
        // Cleanup as a dry run, and a task id that does not exist: allowed calls change nothing either.
        const answer = await rest(op.method, op.path.replace('{task_id}', UNKNOWN_ID), token[role]);
        const where = `${op.method} ${op.path} as ${role}`;
        if (can(role, op.permission)) {
          expect([200, 404], where).toContain(answer.status);
        } else {
          expect(answer.status, where).toBe(403);
          expect(answer.json.error, where).toMatchObject({ code: 'FORBIDDEN', message: `A ${role} token may not use ${op.method} ${op.path}.` });
        }
      }
    }
    expect(await snapshot(database.db.prisma, task.id)).toEqual(before);
  });

  it('lets a viewer read but not clean up or force; an operator may, recorded under its name', async () => {
    const { task } = await taskIn(server.taskwarden.services.tasks, TaskStatus.RUNNING);
    server.clock.advance(45 * 60_000);
    const listed = (await rest('GET', '/api/v1/tasks/monitor/stuck?timeout_minutes=30', token.viewer)).json.tasks.map((t: { id: string }) => t.id);
    expect(listed).toContain(task.id);
    expect((await rest('GET', '/api/v1/tasks/monitor/statistics', token.viewer)).status).toBe(200);
    expect((await rest('POST', '/api/v1/tasks/monitor/cleanup?timeout_minutes=30&auto_fix=true', token.viewer)).status).toBe(403);
    expect((await rest('POST', `/api/v1/tasks/monitor/force-complete/${task.id}?status=failed`, token.viewer)).status).toBe(403);
    expect((await rest('GET', `/api/v1/tasks/${task.id}`, token.viewer)).json.status).toBe('running');

    const forced = await rest('POST', `/api/v1/tasks/monitor/force-complete/${task.id}?status=failed`, token.operator);
    expect(forced.json.status).toBe('failed');
    expect((await snapshot(database.db.prisma, task.id)).events.at(-1)).toMatchObject({ type: 'FAILED', actor: 'operator-token' });
  });

  it('answers 401 with WWW-Authenticate without a token, with a malformed one, or an unknown one', async () => {
    for (const authorization of [undefined, 'Basic abc', 'Bearer tw_nope_nope', `Bearer ${token.admin}x`]) {
      const response = await fetch(`${restClient(server.url).origin}/api/v1/tasks/monitor/statistics`, { headers: authorization ? { authorization } : {} });
      expect(response.status, authorization).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect((await response.json()).error.code).toBe('UNAUTHENTICATED');
    }
    expect((await rest('POST', '/api/v1/tasks/monitor/cleanup?auto_fix=true')).status).toBe(401);
    expect((await rest('GET', '/api/v1/openapi.json')).status).toBe(401);
  });
});
