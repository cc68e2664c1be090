import { beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds, openTestDatabase, useTestDatabase } from './support/databases.js';
import { startTestServer, type TestServer, useTestServer } from './support/server.js';

/**
 * Issue 10, item 8 (second half): a worker chooses its own worker id, which is the actor of its
 * transitions, so each history entry also records the API token that made it (`tokenName`).
 */

const SLOW = 180_000;
const HOUR = 3_600_000;

async function as(server: TestServer, token: string | undefined, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const history = async (server: TestServer, token: string | undefined, id: string) =>
  (await as(server, token, 'query($id: ID!) { task(id: $id) { events { type actor tokenName } } }', { id })).task.events;

async function runningTask(server: TestServer, token: string | undefined, name: string, workerId: string, extra = '') {
  const id = (await as(server, token, `mutation($n: String!) { createTask(input: { name: $n${extra} }) { id } }`, { n: name })).createTask.id as string;
  const lease = (await as(server, token, 'mutation($id: ID!, $w: String!) { startTask(id: $id, workerId: $w) { leaseToken } }', { id, w: workerId })).startTask
    .leaseToken as string;
  return { id, lease };
}

describe.each(databaseKinds)('the token behind each history entry [%s]', (kind) => {
  let worker: string;
  let operator: string;

  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    worker = (await server.taskwarden.services.tokens.create({ name: 'ci-runner', role: 'worker', createdBy: 'test' })).token;
    operator = (await server.taskwarden.services.tokens.create({ name: 'ops-alice', role: 'operator', createdBy: 'test' })).token;
  }, SLOW);

  it(
    "records the worker token's name beside the worker id it chose, on every worker transition",
    async () => {
      const done = await runningTask(server, worker, 'SMA cross AAPL', 'w-1');
      await as(server, worker, 'mutation($id: ID!, $l: String!) { reportProgress(id: $id, leaseToken: $l, progress: 40) { id } }', {
        id: done.id,
        l: done.lease,
      });
      await as(server, worker, 'mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l, result: { sharpe: 1.2 }) { id } }', {
        id: done.id,
        l: done.lease,
      });
      expect(await history(server, worker, done.id)).toEqual([
        { type: 'CREATED', actor: 'ci-runner', tokenName: 'ci-runner' },
        { type: 'STARTED', actor: 'w-1', tokenName: 'ci-runner' },
        { type: 'PROGRESS', actor: 'w-1', tokenName: 'ci-runner' },
        { type: 'COMPLETED', actor: 'w-1', tokenName: 'ci-runner' },
      ]);

      const released = await runningTask(server, worker, 'released', 'w-2');
      await as(server, worker, 'mutation($id: ID!, $l: String!) { releaseTask(id: $id, leaseToken: $l, reason: "draining") { id } }', {
        id: released.id,
        l: released.lease,
      });
      const claimed = (await as(server, worker, 'mutation { claimTask(workerId: "w-3") { leaseToken task { id } } }')).claimTask;
      expect(claimed.task.id).toBe(released.id);
      await as(server, worker, 'mutation($id: ID!, $l: String!) { failTask(id: $id, leaseToken: $l, error: "no data") { id } }', {
        id: claimed.task.id,
        l: claimed.leaseToken,
      });
      expect((await history(server, worker, released.id)).slice(1)).toEqual([
        { type: 'STARTED', actor: 'w-2', tokenName: 'ci-runner' },
        { type: 'REQUEUED', actor: 'w-2', tokenName: 'ci-runner' },
        { type: 'STARTED', actor: 'w-3', tokenName: 'ci-runner' },
        { type: 'FAILED', actor: 'w-3', tokenName: 'ci-runner' },
      ]);
    },
    SLOW,
  );

  it(
    "records an operator token's name on its stop and its cleanup, and none on the monitor's entries",
    async () => {
      const stopped = await runningTask(server, worker, 'stopped', 'w-1');
      await as(server, operator, 'mutation($id: ID!) { stopTask(id: $id, reason: "wrong params") { id } }', { id: stopped.id });
      expect((await history(server, operator, stopped.id)).at(-1)).toEqual({ type: 'CANCELLED', actor: 'ops-alice', tokenName: 'ops-alice' });

      const swept = await runningTask(server, worker, 'silent', 'w-1');
      server.clock.advance(2 * HOUR);
      await server.taskwarden.services.monitor.sweepNow();
      expect((await history(server, operator, swept.id)).at(-1)).toEqual({ type: 'CANCELLED', actor: 'monitor', tokenName: null });

      const cleaned = await runningTask(server, worker, 'cleaned', 'w-1');
      server.clock.advance(2 * HOUR);
      const report = (await as(server, operator, 'mutation { cleanupStuck(autoFix: true, action: FAIL) { fixed { id } } }')).cleanupStuck;
      expect(report.fixed).toEqual([{ id: cleaned.id }]);
      expect((await history(server, operator, cleaned.id)).at(-1)).toEqual({ type: 'FAILED', actor: 'ops-alice', tokenName: 'ops-alice' });
    },
    SLOW,
  );
});

describe.each(databaseKinds)('the token behind each history entry, in open mode [%s]', (kind) => {
  it(
    'records no token: there is none',
    async () => {
      const database = await openTestDatabase(kind);
      const server = await startTestServer(database);
      try {
        const { id, lease } = await runningTask(server, undefined, 'local run', 'w-1');
        await as(server, undefined, 'mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l) { id } }', { id, l: lease });
        expect(await history(server, undefined, id)).toEqual([
          { type: 'CREATED', actor: 'api', tokenName: null },
          { type: 'STARTED', actor: 'w-1', tokenName: null },
          { type: 'COMPLETED', actor: 'w-1', tokenName: null },
        ]);
      } finally {
        await server.stop();
        await database.close();
      }
    },
    SLOW,
  );
});
