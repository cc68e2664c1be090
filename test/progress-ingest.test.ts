import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openDatabase, type DatabaseTarget } from '../src/db/open.js';
import type { Topics } from '../src/events.js';
import { MAX_BATCH } from '../src/tasks/progress-ingest.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { useTestServer } from './support/server.js';
import { codeOf, snapshot, taskHarness, taskIn, useTaskHarness } from './support/tasks.js';

/** Everything the bus carried for live subscribers while `fn` ran: history entries and reports the history did not keep. */
async function published(h: ReturnType<typeof taskHarness>, fn: () => Promise<unknown>) {
  const heard: { taskId: string; progress: number; recorded: boolean }[] = [];
  const stops = [
    h.bus.listen('task:updated', ({ event, task }) => heard.push({ taskId: event.taskId, progress: task?.progress ?? -1, recorded: true })),
    h.bus.listen('task:progressed', ({ task }: Topics['task:progressed']) => heard.push({ taskId: task.id, progress: task.progress, recorded: false })),
  ];
  try {
    await fn();
  } finally {
    for (const stop of stops) stop();
  }
  return heard;
}

describeEachDatabase('progress ingest [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const h = useTaskHarness(database);

  it('refuses a stale lease in a batch as it does alone, and writes and publishes nothing of it', async () => {
    const live = await taskIn(h.tasks, 'RUNNING', 'live');
    const stale = await taskIn(h.tasks, 'RUNNING', 'stale');
    await h.tasks.forceComplete(stale.task.id, { reason: 'the operator took it' });
    const before = await snapshot(h.prisma, stale.task.id);
    h.clock.advance(5_000);

    const alone = await codeOf(() => h.tasks.reportProgress(stale.task.id, stale.leaseToken!, { progress: 80, message: 'zombie' }));
    let results: Awaited<ReturnType<typeof h.tasks.reportProgressBatch>> = [];
    const heard = await published(h, async () => {
      results = await h.tasks.reportProgressBatch([
        { id: live.task.id, leaseToken: live.leaseToken!, progress: 40 },
        { id: stale.task.id, leaseToken: stale.leaseToken!, progress: 80, message: 'zombie' },
      ]);
    });

    expect(alone).toBe('LEASE_MISMATCH');
    expect(results.map((r) => (r.accepted ? 'OK' : r.error.code))).toEqual(['OK', 'LEASE_MISMATCH']);
    expect(await snapshot(h.prisma, stale.task.id)).toEqual(before);
    expect(heard.map((e) => [e.taskId, e.progress])).toEqual([[live.task.id, 40]]);
    expect((await h.prisma.task.findUnique({ where: { id: live.task.id } }))!.progress).toBe(40);
  });

  it('answers a batch in input order, each report on its own lease; an unknown task is NOT_FOUND', async () => {
    const tasks = await Promise.all([1, 2, 3].map((i) => taskIn(h.tasks, 'RUNNING', `t${i}`)));
    const missing = '00000000-0000-4000-8000-000000000000';
    const results = await h.tasks.reportProgressBatch([
      { id: tasks[2]!.task.id, leaseToken: tasks[2]!.leaseToken!, progress: 30 },
      { id: missing, leaseToken: 'x', progress: 1 },
      { id: tasks[0]!.task.id, leaseToken: 'not its lease', progress: 10 },
      { id: tasks[1]!.task.id, leaseToken: tasks[1]!.leaseToken!, message: 'loading' },
    ]);
    expect(results.map((r) => (r.accepted ? `OK ${r.task.id}` : r.error.code))).toEqual([
      `OK ${tasks[2]!.task.id}`,
      'NOT_FOUND',
      'LEASE_MISMATCH',
      `OK ${tasks[1]!.task.id}`,
    ]);
    const rows = await h.prisma.task.findMany({ orderBy: { name: 'asc' } });
    expect(rows.map((t) => [t.name, t.progress, t.message])).toEqual([
      ['t1', 0, null],
      ['t2', 0, 'loading'],
      ['t3', 30, null],
    ]);
  });

  it('refuses a batch with a bad value, or too many reports, as a whole: BAD_USER_INPUT naming the item, nothing written', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    const good = { id: task.id, leaseToken: leaseToken!, progress: 50 };
    const cases: [unknown[], string][] = [
      [[good, { ...good, progress: 101 }], 'reports[1].progress'],
      [[good, { ...good, id: 'not-a-uuid' }], 'reports[1].id'],
      [[{ ...good, message: 'x'.repeat(1001) }], 'reports[0].message'],
      [Array(MAX_BATCH + 1).fill(good), 'reports'],
    ];
    const before = await snapshot(h.prisma, task.id);
    for (const [reports, field] of cases) {
      const error = await h.tasks.reportProgressBatch(reports as never).then(
        () => undefined,
        (e: { code?: string; details?: { field?: string } }) => e,
      );
      expect({ code: error?.code, field: error?.details?.field }).toEqual({ code: 'BAD_USER_INPUT', field });
    }
    expect(await snapshot(h.prisma, task.id)).toEqual(before);
  });

  it('never lets 50 racing reporters overwrite the terminal state a forceComplete set', { timeout: 120_000 }, async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    let forced: Awaited<ReturnType<typeof h.tasks.forceComplete>> | undefined;
    const acknowledgedAfter: number[] = [];
    const reporter = async (r: number) => {
      for (let i = 0; i < 15; i++) {
        const progress = (r * 15 + i) / 10;
        const sentAfterForce = forced !== undefined;
        const write =
          i % 2 === 0
            ? h.tasks.reportProgress(task.id, leaseToken!, { progress, message: `reporter ${r}` }).then(() => true)
            : h.tasks.reportProgressBatch([{ id: task.id, leaseToken: leaseToken!, progress }]).then(([result]) => result!.accepted);
        const accepted = await write.catch(() => false);
        if (accepted && sentAfterForce) acknowledgedAfter.push(progress);
        if (r === 0 && i === 5) forced = await h.tasks.forceComplete(task.id, { reason: 'operator' });
      }
    };
    await Promise.all(Array.from({ length: 50 }, (_, r) => reporter(r)));

    expect(forced?.status).toBe('CANCELLED');
    expect(acknowledgedAfter).toEqual([]);
    const { task: row, events } = await snapshot(h.prisma, task.id);
    expect(row).toMatchObject({
      status: 'CANCELLED',
      leaseToken: null,
      progress: forced!.progress,
      message: forced!.message,
      completedAt: forced!.completedAt,
    });
    expect(events.at(-1)).toMatchObject({ type: 'CANCELLED', reason: 'operator' });
  });

  it('writes reports that arrive during a write together in the next one, each answered with its own task', async () => {
    const tasks = await Promise.all(Array.from({ length: 20 }, (_, i) => taskIn(h.tasks, 'RUNNING', `g${i}`)));
    const answers = await Promise.all(
      tasks.flatMap(({ task, leaseToken }, i) => [
        h.tasks.reportProgress(task.id, leaseToken!, { progress: i }),
        // The same task twice at once: both are written, in order, so the later value stays.
        h.tasks.reportProgress(task.id, leaseToken!, { progress: i + 0.5 }),
      ]),
    );
    expect(answers.map((t) => [t.name, t.progress])).toEqual(
      tasks.flatMap(({ task }, i) => [
        [task.name, i],
        [task.name, i + 0.5],
      ]),
    );
    const rows = await h.prisma.task.findMany({ orderBy: { createdAt: 'asc' } });
    expect(new Map(rows.map((t) => [t.name, t.progress]))).toEqual(new Map(tasks.map(({ task }, i) => [task.name, i + 0.5])));
  });

  it('keeps one PROGRESS entry per PROGRESS_HISTORY_INTERVAL plus every change of message, and publishes every accepted report', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    const heard = await published(h, async () => {
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 10 }); // the first change: kept
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 20 }); // within 30 s, same message: live only
      await h.tasks.reportProgress(task.id, leaseToken!); // a bare heartbeat: neither
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 30, message: 'saving results' }); // a new message: kept
      h.clock.advance(29_000);
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 40 }); // 29 s after the last entry: live only
      h.clock.advance(1_000);
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 50 }); // 30 s: kept
    });
    expect(heard.map((e) => [e.progress, e.recorded])).toEqual([
      [10, true],
      [20, false],
      [30, true],
      [40, false],
      [50, true],
    ]);
    const { events, task: row } = await snapshot(h.prisma, task.id);
    expect(events.filter((e) => e.type === 'PROGRESS').map((e) => [e.progress, e.message])).toEqual([
      [10, null],
      [30, 'saving results'],
      [50, 'saving results'],
    ]);
    // The row itself has every report: progress, and the stuck clocks' timestamps.
    expect(row).toMatchObject({ progress: 50, lastProgressAt: h.clock.now(), lastHeartbeatAt: h.clock.now() });
  });

  it('acknowledges a report only after its commit: a process killed mid-stream loses none it acknowledged', async () => {
    const dir = kind === 'pglite' ? mkdtempSync(join(tmpdir(), 'taskwarden-crash-')) : undefined;
    const target: DatabaseTarget = dir ? { dataDir: dir } : database.target;
    // The embedded database is one process's at a time: this test opens its own folder, then hands it over.
    const db = dir ? await openDatabase(target) : database.db;
    const own = taskHarness({ ...database, db });
    const { task, leaseToken } = await taskIn(own.tasks, 'RUNNING');
    if (dir) await db.close();
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/report-crash.ts'], {
        env: { ...process.env, TARGET: JSON.stringify(target), TASK_ID: task.id, LEASE: leaseToken! },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let acknowledged = 0;
      let acks = 0;
      await new Promise<void>((resolve, reject) => {
        let buffered = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) {
            if (!line.startsWith('ack ')) continue;
            acknowledged = Number(line.slice(4));
            // Killed in the middle of the stream, with reports in flight.
            if (++acks === 60) {
              child.kill('SIGKILL');
              resolve();
            }
          }
        });
        child.once('exit', (code) => (acks < 60 ? reject(new Error(`the reporter exited early (${code})`)) : resolve()));
      });
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
      const reopened = dir ? await openDatabase(target) : database.db;
      const row = await reopened.prisma.task.findUnique({ where: { id: task.id } });
      if (dir) await reopened.close();
      expect(acknowledged).toBeGreaterThan(0);
      expect(row!.progress).toBeGreaterThanOrEqual(acknowledged);
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describeEachDatabase('reportProgressBatch over GraphQL [%s]', (kind) => {
  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database);

  it('answers {id, accepted, code} in input order; a bad value is BAD_USER_INPUT for the whole batch', async () => {
    const { createTask } = await server.ok('mutation { createTask(input: { name: "batch" }) { id } }');
    const { startTask } = await server.ok('mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }', { id: createTask.id });
    const batch = 'mutation($r: [ProgressReportInput!]!) { reportProgressBatch(reports: $r) { id accepted code } }';
    const answer = await server.ok(batch, {
      r: [
        { id: createTask.id, leaseToken: 'stale', progress: 5 },
        { id: createTask.id, leaseToken: startTask.leaseToken, progress: 25, message: 'loading' },
      ],
    });
    expect(answer.reportProgressBatch).toEqual([
      { id: createTask.id, accepted: false, code: 'LEASE_MISMATCH' },
      { id: createTask.id, accepted: true, code: null },
    ]);
    const bad = await server.gql(batch, { r: [{ id: createTask.id, leaseToken: startTask.leaseToken, progress: -1 }] });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'reports[0].progress' });
    const { task } = await server.ok('query($id: ID!) { task(id: $id) { progress message } }', { id: createTask.id });
    expect(task).toEqual({ progress: 25, message: 'loading' });
  });
});
