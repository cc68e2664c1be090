import { PGlite } from '@electric-sql/pglite';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { migrate, readMigrations, type SqlSession } from '../src/db/migrate.js';
import { pgliteSession, pgSession } from '../src/db/open.js';
import { pgliteExtensions } from '../src/db/pglite-extensions.js';
import { prune } from '../src/monitor/retention.js';
import { TaskStatus, type Db } from '../src/tasks/model.js';
import { foldCounts, readCounts } from '../src/tasks/sql/counts.js';
import { selectStuck } from '../src/tasks/sql/stuck.js';
import { detectStuck, type StuckRules } from '../src/tasks/stuck.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase, useTestDatabase } from './support/databases.js';
import { taskHarness } from './support/tasks.js';
import pino from 'pino';
import { createMetrics } from '../src/metrics.js';
import { createServices } from '../src/services.js';

const DAY = 24 * 3600_000;

/** The counts as a full recount sees them, in the counters' shape. */
async function recount(db: Db) {
  const rows = await db.$queryRaw<{ kind: string; status: TaskStatus; n: number; seconds: number; timed: number }[]>`
    SELECT kind, status, count(*)::int AS n,
           COALESCE(sum(EXTRACT(EPOCH FROM "completedAt" - "startedAt")::float8) FILTER (WHERE status = 'COMPLETED'), 0)::float8 AS seconds,
           (count(*) FILTER (WHERE status = 'COMPLETED' AND "completedAt" IS NOT NULL AND "startedAt" IS NOT NULL))::int AS timed
    FROM "Task" GROUP BY kind, status`;
  return sorted(rows);
}
const sorted = <T extends { kind: string; status: string; seconds: number }>(rows: T[]) =>
  rows.map((r) => ({ ...r, seconds: Math.round(r.seconds * 1000) / 1000 })).sort((a, b) => `${a.kind}/${a.status}`.localeCompare(`${b.kind}/${b.status}`));

describeEachDatabase('data at scale [%s]', (kind) => {
  const database = useTestDatabase(kind);

  it('keeps the counters equal to a full recount through 1,000 concurrent transitions (folds running meanwhile)', { timeout: 240_000 }, async () => {
    const { tasks, prisma, services } = taskHarness(database);
    const kinds = ['backtest', 'optimize', 'report'];
    const created = await Promise.all(Array.from({ length: 300 }, (_, i) => tasks.create({ name: `race ${i}`, kind: kinds[i % 3] })));
    const folding = (async () => {
      for (let i = 0; i < 10; i++) await foldCounts(prisma);
    })();
    // Claims race each other for the same pending rows; operators stop some tasks while their workers write.
    const leases = (await Promise.all(created.map((_, i) => tasks.claim(`w${i}`, null)))).filter((l) => l !== null);
    expect(leases.length).toBe(300);
    const attempts: Promise<unknown>[] = [];
    leases.forEach(({ task, leaseToken }, i) => {
      const writes = [
        () => tasks.complete(task.id, leaseToken, { i }),
        () => tasks.fail(task.id, leaseToken, 'boom'),
        () => tasks.release(task.id, leaseToken),
        () => tasks.reportProgress(task.id, leaseToken, { progress: 50 }),
      ];
      attempts.push(writes[i % 4]!(), tasks.stop(task.id), tasks.forceComplete(task.id, { status: TaskStatus.FAILED }));
    });
    await Promise.allSettled(attempts);
    // Then deletions of what finished, and new claims of what was requeued, at once.
    const finished = await prisma.task.findMany({
      where: { status: { in: [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED] } },
      select: { id: true },
    });
    await Promise.allSettled([
      ...finished.slice(0, 100).map((t) => tasks.delete(t.id)),
      ...Array.from({ length: 100 }, (_, i) => tasks.claim(`late${i}`, null)),
      ...Array.from({ length: 100 }, (_, i) => tasks.create({ name: `late ${i}`, kind: kinds[i % 3] })),
    ]);
    await folding;
    const transitions = await prisma.taskEvent.count({ where: { type: { not: 'PROGRESS' } } });
    expect(transitions).toBeGreaterThanOrEqual(1000);
    expect(sorted(await readCounts(prisma))).toEqual(await recount(prisma));
    await foldCounts(prisma);
    expect(sorted(await readCounts(prisma))).toEqual(await recount(prisma));
    const stats = await services.stats.taskStats();
    expect(stats.total).toBe(await prisma.task.count());
    expect(stats.completed).toBe(await prisma.task.count({ where: { status: TaskStatus.COMPLETED } }));
  });

  it('selects in SQL exactly the running tasks the TypeScript rule explains as stuck (random times and settings)', { timeout: 240_000 }, async () => {
    const { prisma } = taskHarness(database);
    const base = Date.parse('2026-03-01T00:00:00Z');
    const hour = 3600_000;
    const scenario = fc
      .record({
        now: fc.integer({ min: 10 * hour, max: 20 * hour }).map((offset) => base + offset),
        heartbeatTimeoutMs: fc.integer({ min: 1000, max: 2 * hour }),
        stallTimeoutMs: fc.integer({ min: 1000, max: 3 * hour }),
        overrideMs: fc.option(fc.integer({ min: 1000, max: 2 * hour }), { nil: undefined }),
        hearingAgo: fc.option(fc.integer({ min: 0, max: 3 * hour }), { nil: undefined }),
      })
      .chain((rules) => {
        const clocks = [rules.heartbeatTimeoutMs, rules.stallTimeoutMs, rules.overrideMs ?? 0, rules.stallTimeoutMs / 2, rules.heartbeatTimeoutMs / 2];
        // Ages in ms: random, or exactly on (or one ms either side of) a clock, where rules disagree first.
        const age = fc.oneof(
          fc.integer({ min: 0, max: 6 * hour }),
          fc
            .constantFrom(...clocks)
            .chain((c) => fc.constantFrom(Math.floor(c) - 1, Math.floor(c), Math.floor(c) + 1))
            .map((c) => Math.max(0, c)),
        );
        const task = fc.record({
          status: fc.constantFrom(TaskStatus.RUNNING, TaskStatus.RUNNING, TaskStatus.RUNNING, TaskStatus.PENDING, TaskStatus.COMPLETED),
          startedAgo: fc.integer({ min: 0, max: 8 * hour }),
          heartbeatAgo: fc.option(age, { nil: null }),
          progressAgo: fc.option(age, { nil: null }),
          timeoutMinutes: fc.option(fc.double({ min: 0.01, max: 600, noNaN: true }), { nil: null }),
          heartbeatTimeoutSeconds: fc.option(fc.oneof(fc.integer({ min: 1, max: 7200 }), fc.double({ min: 1, max: 7200, noNaN: true })), { nil: null }),
          stallTimeoutMinutes: fc.option(fc.double({ min: 0.01, max: 180, noNaN: true }), { nil: null }),
        });
        return fc.tuple(fc.constant(rules), fc.array(task, { minLength: 1, maxLength: 25 }));
      });

    await fc.assert(
      fc.asyncProperty(scenario, async ([r, specs]) => {
        await prisma.task.deleteMany();
        const now = new Date(r.now);
        const rules: StuckRules = {
          heartbeatTimeoutMs: r.heartbeatTimeoutMs,
          stallTimeoutMs: r.stallTimeoutMs,
          overrideMs: r.overrideMs,
          hearingSince: r.hearingAgo === undefined ? undefined : new Date(r.now - r.hearingAgo),
        };
        const startedAt = (s: (typeof specs)[number]) => r.now - s.startedAgo;
        // A heartbeat or a progress is never before the start, nor after now.
        const after = (s: (typeof specs)[number], ago: number | null) => (ago === null ? null : new Date(Math.max(startedAt(s), r.now - ago)));
        await prisma.task.createMany({
          data: specs.map((s, i) => ({
            name: `p${i}`,
            status: s.status,
            startedAt: s.status === TaskStatus.PENDING ? null : new Date(startedAt(s)),
            lastHeartbeatAt: after(s, s.heartbeatAgo),
            lastProgressAt: after(s, s.progressAgo),
            timeoutMinutes: s.timeoutMinutes,
            heartbeatTimeoutSeconds: s.heartbeatTimeoutSeconds,
            stallTimeoutMinutes: s.stallTimeoutMinutes,
            createdAt: new Date(base),
          })),
        });
        const rows = await prisma.task.findMany();
        const explained = rows
          .filter((row) => detectStuck(row, now, rules) !== null)
          .map((row) => row.id)
          .sort();
        const selected = (await selectStuck(prisma, rules, now)).map((row) => row.id).sort();
        expect(selected).toEqual(explained);
      }),
      { numRuns: kind === 'pglite' ? 60 : 40 },
    );
  });

  it(
    'prunes by age: old finished tasks with their history, old progress entries, old histories of deleted tasks; never a running task',
    { timeout: 120_000 },
    async () => {
      const { tasks, prisma, clock } = taskHarness(database);
      const t0 = clock.now();
      // 40 days ago: one finished, one still running (with progress), one deleted.
      const oldDone = await tasks.create({ name: 'old done' });
      const doneLease = await tasks.start(oldDone.id, 'w');
      await tasks.reportProgress(oldDone.id, doneLease.leaseToken, { progress: 30 });
      await tasks.complete(oldDone.id, doneLease.leaseToken, {});
      const oldRunning = await tasks.create({ name: 'old running' });
      const runLease = await tasks.start(oldRunning.id, 'w');
      await tasks.reportProgress(oldRunning.id, runLease.leaseToken, { progress: 10 });
      const oldDeleted = await tasks.create({ name: 'old deleted' });
      await tasks.stop(oldDeleted.id);
      await tasks.delete(oldDeleted.id);
      // Now: a young finished task, with progress, and a young deletion.
      clock.set(new Date(t0.getTime() + 40 * DAY));
      await tasks.reportProgress(oldRunning.id, runLease.leaseToken, { progress: 20 });
      const young = await tasks.create({ name: 'young done' });
      const youngLease = await tasks.start(young.id, 'w');
      await tasks.reportProgress(young.id, youngLease.leaseToken, { progress: 50 });
      await tasks.complete(young.id, youngLease.leaseToken, {});
      const youngDeleted = await tasks.create({ name: 'young deleted' });
      await tasks.stop(youngDeleted.id);
      await tasks.delete(youngDeleted.id);

      const settings = { taskRetentionMs: 30 * DAY, historyRetentionMs: 30 * DAY };
      const before = await prisma.taskEvent.count();
      const dry = await prune(prisma, settings, clock.now(), { dryRun: true });
      expect(dry).toMatchObject({ tasks: 1, dryRun: true });
      expect(await prisma.taskEvent.count()).toBe(before); // a dry run deletes nothing
      // Batches of one row, so the batching itself is exercised.
      const done = await prune(prisma, settings, clock.now(), { batchSize: 1 });
      expect(done).toMatchObject({ tasks: 1, events: dry.events, dryRun: false, more: false });

      expect((await prisma.task.findMany({ orderBy: { name: 'asc' } })).map((t) => t.name)).toEqual(['old running', 'young done']);
      expect(await prisma.taskEvent.count({ where: { taskId: oldDone.id } })).toBe(0);
      expect(await prisma.taskEvent.count({ where: { taskId: oldDeleted.id } })).toBe(0);
      expect(await prisma.taskEvent.count({ where: { taskId: youngDeleted.id } })).toBe(3); // CREATED, CANCELLED, DELETED
      const running = await prisma.taskEvent.findMany({ where: { taskId: oldRunning.id }, orderBy: { id: 'asc' } });
      expect(running.map((e) => e.type)).toEqual(['CREATED', 'STARTED', 'PROGRESS']); // the old PROGRESS went, transitions stay
      expect(running[2]!.progress).toBe(20);
      expect((await prisma.taskEvent.findMany({ where: { taskId: young.id } })).map((e) => e.type).sort()).toEqual([
        'COMPLETED',
        'CREATED',
        'PROGRESS',
        'STARTED',
      ]);
      expect(sorted(await readCounts(prisma))).toEqual(await recount(prisma));

      // Nothing is due any more; with retention off nothing goes at all.
      expect(await prune(prisma, settings, clock.now())).toMatchObject({ tasks: 0, events: 0 });
      clock.set(new Date(t0.getTime() + 400 * DAY));
      expect(await prune(prisma, { taskRetentionMs: null, historyRetentionMs: null }, clock.now())).toMatchObject({ tasks: 0, events: 0 });
      expect(await prisma.task.count()).toBe(2);
    },
  );

  it("the monitor's upkeep round folds the counters, prunes in batches and counts the pruned rows on /metrics", async () => {
    const { tasks, prisma, clock, bus } = taskHarness(database);
    const metrics = createMetrics();
    const services = createServices({
      prisma,
      clock,
      bus,
      monitor: { enabled: true, intervalMs: 60_000, heartbeatTimeoutMs: 3_600_000, stallTimeoutMs: 3_600_000, action: 'cancel' },
      retention: { taskRetentionMs: DAY, historyRetentionMs: null },
      log: pino({ level: 'silent' }),
      observe: metrics.observers,
    });
    for (let i = 0; i < 3; i++) await tasks.stop((await tasks.create({ name: `old ${i}` })).id);
    const running = await tasks.create({ name: 'running' });
    await tasks.start(running.id, 'w');
    clock.advance(2 * DAY);
    const before = await prisma.taskCount.count();
    const report = await services.retention.runNow();
    expect(report).toMatchObject({ tasks: 3, events: 6, more: false });
    expect(await prisma.taskCount.count()).toBeLessThan(before); // folded
    expect((await prisma.task.findMany()).map((t) => t.name)).toEqual(['running']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('taskwarden_pruned_rows_total{table="task"} 3');
    expect(text).toContain('taskwarden_pruned_rows_total{table="task_event"} 6');
    expect(sorted(await readCounts(prisma))).toEqual(await recount(prisma));
  });

  it('searches names through the trigram index, and answers stats and totals from the counters', async () => {
    const { tasks, prisma, services } = taskHarness(database);
    for (const name of ['SMA cross AAPL', 'bt 12345 momentum', 'BT 123456 carry', 'other']) await tasks.create({ name });
    const done = await tasks.create({ name: 'finished one', kind: 'report' });
    const { leaseToken } = await tasks.start(done.id, 'w');
    await tasks.complete(done.id, leaseToken, {});
    const [index] = await prisma.$queryRaw<{ indexdef: string }[]>`SELECT indexdef FROM pg_indexes WHERE indexname = 'Task_name_trgm_idx'`;
    expect(index?.indexdef).toContain('gin_trgm_ops');
    expect((await tasks.list({ search: 'bt 12345' })).map((t) => t.name).sort()).toEqual(['BT 123456 carry', 'bt 12345 momentum']);
    expect(await tasks.count({ search: 'bt 12345' })).toBe(2);
    expect(await tasks.count({ status: [TaskStatus.PENDING] })).toBe(4);
    expect(await tasks.count({ kind: 'report', status: [TaskStatus.COMPLETED, TaskStatus.FAILED] })).toBe(1);
    const stats = await services.stats.taskStats();
    expect(stats).toMatchObject({ total: 5, pending: 4, completed: 1, successRate: 1, stuck: 0 });
    expect(stats.byKind.map((k) => [k.kind, k.total])).toEqual([
      ['backtest', 4],
      ['report', 1],
    ]);
  });

  it('upgrades a database made and filled by the previous migrations in place: nothing lost, counters backfilled', { timeout: 180_000 }, async () => {
    const ours = readMigrations().findIndex((m) => m.name.endsWith('_task_counts_search'));
    const previous = readMigrations().slice(0, ours);
    const { session, close } = await freshSession(kind, database);
    try {
      expect(await migrate(session, previous)).toEqual(previous.map((m) => m.name));
      await session.exec(`
        INSERT INTO "Task" (name, kind, status, "startedAt", "completedAt", "createdAt", params)
        SELECT 'old ' || i, CASE WHEN i % 3 = 0 THEN 'optimize' ELSE 'backtest' END,
               (ARRAY['PENDING','RUNNING','COMPLETED','FAILED','CANCELLED'])[1 + i % 5]::"TaskStatus",
               CASE WHEN i % 5 <> 0 THEN timestamptz '2026-01-01' + i * interval '1 minute' END,
               CASE WHEN i % 5 >= 2 THEN timestamptz '2026-01-01' + i * interval '1 minute' + (i % 7) * interval '1 second' END,
               timestamptz '2026-01-01' + i * interval '1 minute', jsonb_build_object('i', i)
        FROM generate_series(1, 500) i;
        INSERT INTO "TaskEvent" ("taskId", kind, type, actor, attempt, at)
        SELECT id, kind, 'CREATED', 'api', 0, "createdAt" FROM "Task";`);
      const tasksBefore = await session.query(`SELECT * FROM "Task" ORDER BY id`);
      const eventsBefore = await session.query(`SELECT * FROM "TaskEvent" ORDER BY id`);
      expect(await migrate(session)).toEqual(
        readMigrations()
          .slice(ours)
          .map((m) => m.name),
      );
      // Every value that was there is still there; later migrations may only add columns beside them.
      const asBefore = (rows: Record<string, unknown>[], before: Record<string, unknown>[]) =>
        rows.map((row, i) => Object.fromEntries(Object.keys(before[i] ?? row).map((key) => [key, row[key]])));
      expect(asBefore(await session.query(`SELECT * FROM "Task" ORDER BY id`), tasksBefore)).toEqual(tasksBefore);
      expect(asBefore(await session.query(`SELECT * FROM "TaskEvent" ORDER BY id`), eventsBefore)).toEqual(eventsBefore);
      const counters = await session.query<{ kind: string; status: string; n: number; seconds: number; timed: number }>(
        `SELECT kind, status::text, sum(n)::int AS n, sum(seconds)::float8 AS seconds, sum(timed)::int AS timed FROM "TaskCount" GROUP BY 1, 2`,
      );
      const counted = await session.query<{ kind: string; status: string; n: number; seconds: number; timed: number }>(`
        SELECT kind, status::text, count(*)::int AS n,
               COALESCE(sum(EXTRACT(EPOCH FROM "completedAt" - "startedAt")::float8) FILTER (WHERE status = 'COMPLETED'), 0)::float8 AS seconds,
               (count(*) FILTER (WHERE status = 'COMPLETED' AND "completedAt" IS NOT NULL AND "startedAt" IS NOT NULL))::int AS timed
        FROM "Task" GROUP BY 1, 2`);
      expect(sorted(counters)).toEqual(sorted(counted));
      expect(counted.reduce((sum, c) => sum + c.n, 0)).toBe(500);
      // And the trigger keeps them from then on.
      await session.exec(`UPDATE "Task" SET status = 'CANCELLED', "completedAt" = now() WHERE status = 'PENDING'; DELETE FROM "Task" WHERE status = 'FAILED'`);
      const after = await session.query<{ n: number }>(`SELECT COALESCE(sum(n), 0)::int AS n FROM "TaskCount" WHERE status = 'PENDING' OR status = 'FAILED'`);
      expect(after[0]!.n).toBe(0);
    } finally {
      await close();
    }
  });
});

/** An empty database of the kind, as a migration session. */
async function freshSession(kind: 'pglite' | 'postgres', database: TestDatabase): Promise<{ session: SqlSession; close(): Promise<void> }> {
  if (kind === 'pglite') {
    const pglite = await PGlite.create({ extensions: pgliteExtensions });
    return { session: pgliteSession(pglite), close: () => pglite.close() };
  }
  const other = await openTestDatabase('postgres');
  const client = await other.connect!();
  await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  void database;
  return { session: pgSession(client), close: () => other.close() };
}
