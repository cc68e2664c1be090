import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Property: whatever a client sends to the mutations, the server answers
 * without a 500, leaks no internals, and a refused call leaves the database
 * exactly as it was.
 */
describe('mutations under random input', () => {
  let database: TestDatabase;
  let server: TestServer;
  let running: { id: string; lease: string };
  let completed: string;

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    server = await startTestServer(database);
    const a = (await server.ok('mutation { createTask(input: { name: "running" }) { id } }')).createTask.id;
    const lease = (await server.ok(`mutation { startTask(id: "${a}", workerId: "w") { leaseToken } }`)).startTask.leaseToken;
    running = { id: a, lease };
    const b = (await server.ok('mutation { createTask(input: { name: "done" }) { id } }')).createTask.id;
    const l2 = (await server.ok(`mutation { startTask(id: "${b}", workerId: "w") { leaseToken } }`)).startTask.leaseToken;
    await server.ok(`mutation { completeTask(id: "${b}", leaseToken: "${l2}") { id } }`);
    completed = b;
  });
  afterAll(async () => {
    await server.stop();
    await database.close();
  });

  // Raw JSON fragments, so values JSON.stringify cannot produce (1e400 parses as Infinity) reach the server.
  const raw = (value: unknown) => JSON.stringify(value);
  const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 300 }), fc.constantFrom('', ' ', '\u0000', 'x'.repeat(201), 'x'.repeat(10_001)));
  const number = fc.oneof(
    fc.double().map(raw),
    fc.integer().map(raw),
    fc.constantFrom('1e400', '-1e400', '-0', '100.0000001', '"50"', 'null', 'true'),
  );
  const json = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }).map(raw),
    fc.constantFrom(raw({ blob: 'x'.repeat(70_000) }), raw({ blob: 'x'.repeat(1_100_000) }), `${'['.repeat(3000)}${']'.repeat(3000)}`, raw('\u0000')),
  );
  const id = fc.oneof(fc.constantFrom(() => running.id, () => completed, () => '00000000-0000-4000-8000-000000000000'), fc.string().map((s) => () => s));
  const lease = fc.oneof(fc.constant(() => running.lease), fc.string().map((s) => () => s));

  const call = fc.oneof(
    fc.record({ name: text, kind: fc.option(text), params: fc.option(json), timeout: fc.option(number), attempts: fc.option(number) }).map((v) => ({
      query: 'mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }',
      variables: () => `{"i":{"name":${raw(v.name)}${v.kind === null ? '' : `,"kind":${raw(v.kind)}`}${v.params === null ? '' : `,"params":${v.params}`}${v.timeout === null ? '' : `,"timeoutMinutes":${v.timeout}`}${v.attempts === null ? '' : `,"maxAttempts":${v.attempts}`}}}`,
    })),
    fc.record({ id, lease, progress: fc.option(number), message: fc.option(text) }).map((v) => ({
      query: 'mutation($id: ID!, $l: String!, $p: Float, $m: String) { reportProgress(id: $id, leaseToken: $l, progress: $p, message: $m) { id } }',
      variables: () => `{"id":${raw(v.id())},"l":${raw(v.lease())}${v.progress === null ? '' : `,"p":${v.progress}`}${v.message === null ? '' : `,"m":${raw(v.message)}`}}`,
    })),
    fc.record({ id, lease, result: json }).map((v) => ({
      query: 'mutation($id: ID!, $l: String!, $r: JSON) { completeTask(id: $id, leaseToken: $l, result: $r) { id } }',
      variables: () => `{"id":${raw(v.id())},"l":${raw(v.lease())},"r":${v.result}}`,
    })),
    fc.record({ id, lease, error: text }).map((v) => ({
      query: 'mutation($id: ID!, $l: String!, $e: String!) { failTask(id: $id, leaseToken: $l, error: $e) { id } }',
      variables: () => `{"id":${raw(v.id())},"l":${raw(v.lease())},"e":${raw(v.error)}}`,
    })),
    fc.record({ id, status: fc.constantFrom('CANCELLED', 'FAILED', 'COMPLETED', 'nope', 'PENDING'), reason: fc.option(text) }).map((v) => ({
      query: 'mutation($id: ID!, $s: TaskStatus!, $r: String) { forceComplete(id: $id, status: $s, reason: $r) { id } }',
      variables: () => `{"id":${raw(v.id())},"s":${raw(v.status)}${v.reason === null ? '' : `,"r":${raw(v.reason)}`}}`,
    })),
    fc.record({ timeout: number, action: fc.constantFrom('CANCEL', 'FAIL', 'RETRY', 'NONE', 'DELETE') }).map((v) => ({
      query: 'mutation($t: Float!, $a: StuckAction!) { cleanupStuck(timeoutMinutes: $t, autoFix: false, action: $a) { autoFix } }',
      variables: () => `{"t":${v.timeout},"a":${raw(v.action)}}`,
    })),
  );

  const snapshot = async () => ({
    tasks: await database.db.prisma.task.findMany({ orderBy: { id: 'asc' } }),
    events: await database.db.prisma.taskEvent.count(),
  });

  it('never answers 500, never leaks internals, and a refused call writes nothing', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(call, async ({ query, variables }) => {
        const before = await snapshot();
        const body = `{"query":${JSON.stringify(query)},"variables":${variables()}}`;
        const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const answer = await response.text();
        expect(response.status).toBeLessThan(500);
        expect(answer).not.toMatch(/prisma|postgres|stack|\bat \/|node_modules|SELECT |INSERT |UPDATE /i);
        const parsed = JSON.parse(answer) as { errors?: { extensions?: { code?: string } }[]; data?: unknown };
        if (parsed.errors?.length) {
          expect(parsed.errors.every((e) => typeof e.extensions?.code === 'string' && e.extensions.code !== 'INTERNAL_SERVER_ERROR')).toBe(true);
          expect(await snapshot()).toEqual(before);
        } else {
          // Accepted calls may write; put the fixtures back so later runs meet a running task and a finished one again.
          await database.db.prisma.task.deleteMany({ where: { id: { notIn: [running.id, completed] } } });
          await database.db.prisma.task.update({
            where: { id: running.id },
            data: { status: 'RUNNING', leaseToken: running.lease, result: Prisma.DbNull, error: null, completedAt: null },
          });
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 250) },
    );
    expect((await fetch(server.url.replace('/graphql', '/health'))).status).toBe(200);
  });
});
