import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { useTestDatabase } from './support/databases.js';
import { useTestServer } from './support/server.js';

/**
 * Property: whatever a client sends to the mutations, the server answers
 * without a 500, leaks no internals, and a refused call leaves the database
 * exactly as it was. An oracle says, where it can, what each call must get:
 * a lease that does not hold the running task, progress outside 0..100 or an
 * over-long error must be refused; a valid write under the running lease must go through.
 */
describe('mutations under random input', () => {
  let running: { id: string; lease: string };
  let completed: string;

  const database = useTestDatabase('pglite', { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    const a = (await server.ok('mutation { createTask(input: { name: "running" }) { id } }')).createTask.id;
    const lease = (await server.ok(`mutation { startTask(id: "${a}", workerId: "w") { leaseToken } }`)).startTask.leaseToken;
    running = { id: a, lease };
    const b = (await server.ok('mutation { createTask(input: { name: "done" }) { id } }')).createTask.id;
    const l2 = (await server.ok(`mutation { startTask(id: "${b}", workerId: "w") { leaseToken } }`)).startTask.leaseToken;
    await server.ok(`mutation { completeTask(id: "${b}", leaseToken: "${l2}") { id } }`);
    completed = b;
  });

  // Raw JSON fragments, so values JSON.stringify cannot produce (1e400 parses as Infinity) reach the server.
  const raw = (value: unknown) => JSON.stringify(value);
  const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 300 }), fc.constantFrom('', ' ', '\u0000', 'x'.repeat(201), 'x'.repeat(10_001)));
  const number = fc.oneof(
    fc.double().map(raw),
    fc.integer().map(raw),
    fc.integer({ min: 0, max: 100 }).map(raw),
    fc.constantFrom('1e400', '-1e400', '-0', '100.0000001', '150', '-1', '0', '100', '"50"', 'null', 'true'),
  );
  const json = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }).map(raw),
    fc.constantFrom(raw({ blob: 'x'.repeat(70_000) }), raw({ blob: 'x'.repeat(1_100_000) }), `${'['.repeat(3000)}${']'.repeat(3000)}`, raw('\u0000')),
  );
  // Each id and lease knows whether it is the running task's, so the oracle can say what must happen.
  const id = fc.oneof(
    fc.constantFrom(
      { get: () => running.id, running: true },
      { get: () => completed, running: false },
      { get: () => '00000000-0000-4000-8000-000000000000', running: false },
    ),
    fc.string().map((s) => ({ get: () => s, running: false })),
  );
  const lease = fc.oneof(
    fc.constant({ get: () => running.lease, current: true }),
    fc.string().map((s) => ({ get: () => s, current: false })),
  );

  /** The oracle's view of a value: what the server must make of it. */
  const progressOk = (rawNumber: string | null) => {
    if (rawNumber === null || rawNumber === 'null') return true;
    const value = JSON.parse(rawNumber) as unknown;
    return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 100;
  };
  const textOk = (value: string, max: number, allowEmpty = false) => (allowEmpty || value.trim() !== '') && value.length <= max && !value.includes('\u0000');
  /** `refuse`: the call must be refused; `accept`: it must go through; neither: the oracle does not say. */
  type Expect = { refuse?: string; accept?: boolean };
  const leaseWrite = (v: { id: { running: boolean }; lease: { current: boolean } }, valid: boolean, what: string): Expect => {
    if (!v.id.running) return { refuse: 'not the running task' };
    if (!v.lease.current) return { refuse: 'a lease that does not hold the running task' };
    if (!valid) return { refuse: what };
    return { accept: true };
  };

  type Id = { get: () => string; running: boolean };
  type Lease = { get: () => string; current: boolean };
  const progressCall = (v: { id: Id; lease: Lease; progress: string | null; message: string | null }) => ({
    query: 'mutation($id: ID!, $l: String!, $p: Float, $m: String) { reportProgress(id: $id, leaseToken: $l, progress: $p, message: $m) { id } }',
    variables: () =>
      `{"id":${raw(v.id.get())},"l":${raw(v.lease.get())}${v.progress === null ? '' : `,"p":${v.progress}`}${v.message === null ? '' : `,"m":${raw(v.message)}`}}`,
    expect: leaseWrite(v, progressOk(v.progress) && (v.message === null || textOk(v.message, 1000, true)), 'progress outside 0..100 or a bad message'),
  });
  const failCall = (v: { id: Id; lease: Lease; error: string }) => ({
    query: 'mutation($id: ID!, $l: String!, $e: String!) { failTask(id: $id, leaseToken: $l, error: $e) { id } }',
    variables: () => `{"id":${raw(v.id.get())},"l":${raw(v.lease.get())},"e":${raw(v.error)}}`,
    expect: leaseWrite(v, textOk(v.error, 10_000), 'an empty or over-long error'),
  });
  // The cases the oracle is for, run every time before the random ones.
  const runningId: Id = { get: () => running.id, running: true };
  const currentLease: Lease = { get: () => running.lease, current: true };
  const staleLease: Lease = { get: () => 'a-lease-from-an-earlier-attempt', current: false };
  const examples = [
    progressCall({ id: runningId, lease: currentLease, progress: '150', message: null }),
    progressCall({ id: runningId, lease: currentLease, progress: '100.0000001', message: null }),
    progressCall({ id: runningId, lease: staleLease, progress: '50', message: null }),
    progressCall({ id: runningId, lease: staleLease, progress: null, message: null }),
    progressCall({ id: runningId, lease: currentLease, progress: '50', message: 'simulating' }),
    failCall({ id: runningId, lease: currentLease, error: 'x'.repeat(10_001) }),
    failCall({ id: runningId, lease: staleLease, error: 'late failure' }),
    failCall({ id: runningId, lease: currentLease, error: 'x'.repeat(10_000) }),
  ].map((example) => [example] as [typeof example]);

  const call = fc.oneof(
    fc.record({ name: text, kind: fc.option(text), params: fc.option(json), timeout: fc.option(number), attempts: fc.option(number) }).map((v) => ({
      query: 'mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }',
      variables: () =>
        `{"i":{"name":${raw(v.name)}${v.kind === null ? '' : `,"kind":${raw(v.kind)}`}${v.params === null ? '' : `,"params":${v.params}`}${v.timeout === null ? '' : `,"timeoutMinutes":${v.timeout}`}${v.attempts === null ? '' : `,"maxAttempts":${v.attempts}`}}}`,
      expect: (textOk(v.name, 200) ? {} : { refuse: 'a bad name' }) as Expect,
    })),
    fc.record({ id, lease, progress: fc.option(number), message: fc.option(text) }).map(progressCall),
    fc.record({ id, lease, result: json }).map((v) => ({
      query: 'mutation($id: ID!, $l: String!, $r: JSON) { completeTask(id: $id, leaseToken: $l, result: $r) { id } }',
      variables: () => `{"id":${raw(v.id.get())},"l":${raw(v.lease.get())},"r":${v.result}}`,
      expect: ((e) => (e.accept ? {} : e))(leaseWrite(v, v.result.length < 1024 * 1024, 'a result over 1 MB')),
    })),
    fc.record({ id, lease, error: text }).map(failCall),
    fc.record({ id, status: fc.constantFrom('CANCELLED', 'FAILED', 'COMPLETED', 'nope', 'PENDING'), reason: fc.option(text) }).map((v) => ({
      query: 'mutation($id: ID!, $s: TaskStatus!, $r: String) { forceComplete(id: $id, status: $s, reason: $r) { id } }',
      variables: () => `{"id":${raw(v.id.get())},"s":${raw(v.status)}${v.reason === null ? '' : `,"r":${raw(v.reason)}`}}`,
      expect: (v.id.running ? (v.status === 'nope' ? { refuse: 'no such status' } : {}) : { refuse: 'not a running task' }) as Expect,
    })),
    fc.record({ timeout: number, action: fc.constantFrom('CANCEL', 'FAIL', 'RETRY', 'NONE', 'DELETE') }).map((v) => ({
      query: 'mutation($t: Float!, $a: StuckAction!) { cleanupStuck(timeoutMinutes: $t, autoFix: false, action: $a) { autoFix } }',
      variables: () => `{"t":${v.timeout},"a":${raw(v.action)}}`,
      expect: (v.action === 'DELETE' ? { refuse: 'no such action' } : {}) as Expect,
    })),
  );

  const snapshot = async () => ({
    tasks: await database.db.prisma.task.findMany({ orderBy: { id: 'asc' } }),
    events: await database.db.prisma.taskEvent.count(),
  });

  it(
    'refuses what it must and accepts what it must, never answers 500, never leaks internals, and a refused call writes nothing',
    { timeout: 240_000 },
    async () => {
      await fc.assert(
        fc.asyncProperty(call, async ({ query, variables, expect: expected }) => {
          const before = await snapshot();
          const body = `{"query":${JSON.stringify(query)},"variables":${variables()}}`;
          const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const answer = await response.text();
          expect(response.status).toBeLessThan(500);
          expect(answer).not.toMatch(/prisma|postgres|stack|\bat \/|node_modules|SELECT |INSERT |UPDATE /i);
          const parsed = JSON.parse(answer) as { errors?: { extensions?: { code?: string } }[]; data?: unknown };
          if (expected.refuse) expect(parsed.errors ?? [], `must be refused: ${expected.refuse}`).not.toHaveLength(0);
          if (expected.accept) expect(parsed.errors, 'must be accepted').toBeUndefined();
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
        { numRuns: Number(process.env.FUZZ_RUNS ?? 250), examples },
      );
      expect((await fetch(server.url.replace('/graphql', '/health'))).status).toBe(200);
    },
  );
});
