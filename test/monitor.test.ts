import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StuckAction } from '../src/config.js';
import type { StuckAlert } from '../src/events.js';
import { createMonitor } from '../src/monitor/monitor.js';
import { sweep } from '../src/monitor/sweep.js';
import { detectStuck, oneTimeout } from '../src/tasks/stuck.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from './support/databases.js';
import { codeOf, snapshot, taskHarness, taskIn } from './support/tasks.js';

const MINUTE = 60_000;
const TIMEOUT = 60 * MINUTE;

describe.each(databaseKinds)('stuck detection and the monitor [%s]', (kind) => {
  let database: TestDatabase;
  let h: ReturnType<typeof taskHarness>;

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    h = taskHarness(database);
  });
  afterAll(() => database.close());
  beforeEach(() => database.reset());

  const deps = () => ({ prisma: h.prisma, tasks: h.tasks, clock: h.clock, bus: h.bus, alerts: h.alerts });
  const run = (action: StuckAction, trigger: 'schedule' | 'manual' = 'schedule') =>
    sweep(deps(), { rules: oneTimeout(TIMEOUT), action, actor: 'monitor', trigger });

  /** A running task whose worker heartbeats but never moves past 90%. */
  async function frozenAt90(minutes: number) {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', 'frozen');
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    for (let m = 0; m < minutes; m += 10) {
      h.clock.advance(10 * MINUTE);
      await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    }
    return { task, leaseToken: leaseToken! };
  }

  it('finds a task whose worker went silent (NO_HEARTBEAT) and cancels it', async () => {
    const alerts = h.bus.subscribe('task:stuck');
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', 'dead worker');
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    const healthy = await taskIn(h.tasks, 'RUNNING', 'healthy');
    h.clock.advance(TIMEOUT + MINUTE);
    await h.tasks.reportProgress(healthy.task.id, healthy.leaseToken!, { progress: 50 });

    const report = await run('cancel');
    expect(report).toMatchObject({ ran: true, scanned: 2 });
    expect(report.found.map((f) => [f.task.name, f.verdict.reason])).toEqual([['dead worker', 'NO_HEARTBEAT']]);
    expect(report.handled).toMatchObject([{ outcome: 'cancel', task: { status: 'CANCELLED', progress: 90 } }]);

    const { events } = await snapshot(h.prisma, task.id);
    expect(events.at(-1)).toMatchObject({ type: 'CANCELLED', actor: 'monitor', reason: 'NO_HEARTBEAT', fromStatus: 'RUNNING' });
    const alert = (await alerts.next()).value as StuckAlert;
    expect(alert).toMatchObject({ reason: 'NO_HEARTBEAT', actionTaken: 'cancel', stuckForSeconds: (TIMEOUT + MINUTE) / 1000, task: { id: task.id } });
    expect((await h.tasks.get(healthy.task.id))!.status).toBe('RUNNING');
    // The worker that wakes up later can write nothing.
    expect(await codeOf(() => h.tasks.complete(task.id, leaseToken!, { late: true }))).toBe('LEASE_MISMATCH');
  });

  it('finds a worker that is alive but frozen (NO_PROGRESS)', async () => {
    const { task } = await frozenAt90(70);
    const verdict = detectStuck((await h.tasks.get(task.id))!, h.clock.now(), oneTimeout(TIMEOUT));
    expect(verdict?.reason).toBe('NO_PROGRESS');
    const report = await run('fail');
    expect(report.handled).toMatchObject([{ outcome: 'fail', task: { status: 'FAILED', error: expect.stringContaining('no progress for') } }]);
  });

  it('calls a worker that died just after a heartbeat dead (NO_HEARTBEAT), not frozen', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', 'died after a heartbeat');
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 50 });
    h.clock.advance(MINUTE);
    await h.tasks.reportProgress(task.id, leaseToken!); // its last sign of life: a bare heartbeat
    h.clock.advance(TIMEOUT - MINUTE / 2); // no progress for longer than the timeout, silent for less
    expect((await run('cancel')).found).toEqual([]);
    h.clock.advance(MINUTE);
    expect((await run('cancel')).found.map((f) => f.verdict.reason)).toEqual(['NO_HEARTBEAT']);
  });

  it('finds a task past its own time limit (OVERTIME), even while it progresses', async () => {
    const created = await h.tasks.create({ name: 'bounded', timeoutMinutes: 5 });
    const { leaseToken } = await h.tasks.start(created.id, 'w');
    for (let i = 1; i <= 6; i++) {
      h.clock.advance(MINUTE);
      await h.tasks.reportProgress(created.id, leaseToken, { progress: i * 10 });
    }
    const report = await run('cancel');
    expect(report.found.map((f) => f.verdict.reason)).toEqual(['OVERTIME']);
    expect((await h.tasks.get(created.id))!.status).toBe('CANCELLED');
  });

  it('retries a stuck task while attempts remain, then fails it', async () => {
    const created = await h.tasks.create({ name: 'flaky', maxAttempts: 2 });
    const first = await h.tasks.start(created.id, 'w1');
    h.clock.advance(TIMEOUT + 1);
    expect((await run('retry')).handled).toMatchObject([{ outcome: 'retry', task: { status: 'PENDING', attempt: 1, workerId: null } }]);
    expect(await codeOf(() => h.tasks.reportProgress(created.id, first.leaseToken))).toBe('LEASE_MISMATCH');

    const second = await h.tasks.claim('w2');
    expect(second!.task).toMatchObject({ id: created.id, attempt: 2, progress: 0 });
    h.clock.advance(TIMEOUT + 1);
    expect((await run('retry')).handled).toMatchObject([
      { outcome: 'fail', task: { status: 'FAILED', error: expect.stringContaining('no attempts left (2 of 2)') } },
    ]);
    const types = (await h.tasks.history({ taskId: created.id })).map((e) => e.type);
    expect(types).toEqual(['CREATED', 'STARTED', 'REQUEUED', 'STARTED', 'FAILED']);
  });

  it('with action none, leaves the task running and alerts once per stuck episode', async () => {
    const alerts = h.bus.subscribe('task:stuck');
    const { task, leaseToken } = await frozenAt90(70);
    const first = await run('none');
    expect(first.handled).toHaveLength(1);
    h.clock.advance(10 * MINUTE);
    await h.tasks.reportProgress(task.id, leaseToken, { progress: 90, message: 'saving results' });
    expect((await run('none')).handled).toHaveLength(0); // same episode: no second alert
    expect((await run('none')).found).toHaveLength(1); // though it is still stuck

    // It recovers, then freezes again: a new episode, a new alert.
    await h.tasks.reportProgress(task.id, leaseToken, { progress: 95, message: 'writing report' });
    expect((await run('none')).found).toHaveLength(0);
    h.clock.advance(TIMEOUT + MINUTE);
    await h.tasks.reportProgress(task.id, leaseToken);
    expect((await run('none')).handled).toHaveLength(1);

    expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');
    const stuckEvents = (await h.tasks.history({ taskId: task.id })).filter((e) => e.type === 'STUCK');
    expect(stuckEvents.map((e) => [e.actor, e.reason, e.fromStatus, e.toStatus])).toEqual([
      ['monitor', 'NO_PROGRESS', 'RUNNING', 'RUNNING'],
      ['monitor', 'NO_PROGRESS', 'RUNNING', 'RUNNING'],
    ]);
    const received = [(await alerts.next()).value, (await alerts.next()).value] as StuckAlert[];
    expect(received.map((a) => a.actionTaken)).toEqual(['none', 'none']);
    await alerts.return!();
  });

  it('spares a worker that comes back between detection and action', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', 'slow network');
    h.clock.advance(TIMEOUT + MINUTE);
    const seen = (await h.tasks.get(task.id))!;
    const verdict = detectStuck(seen, h.clock.now(), oneTimeout(TIMEOUT))!;
    expect(verdict.reason).toBe('NO_HEARTBEAT');
    await h.tasks.reportProgress(task.id, leaseToken!); // the heartbeat lands first
    expect(await h.tasks.resolveStuck(h.prisma, seen, verdict, 'cancel', 'monitor')).toBeNull();
    expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');
  });

  it('reads only running tasks and records each sweep', async () => {
    for (let i = 0; i < 30; i++) await taskIn(h.tasks, i % 2 ? 'COMPLETED' : 'CANCELLED', `done ${i}`);
    await taskIn(h.tasks, 'PENDING');
    await taskIn(h.tasks, 'RUNNING');
    const report = await run('cancel', 'manual');
    expect(report.scanned).toBe(1);
    const recorded = await h.prisma.monitorSweep.findMany();
    expect(recorded).toMatchObject([{ trigger: 'manual', scanned: 1, found: 0, fixed: 0, action: 'cancel', timeoutMinutes: 60 }]);
  });

  it('keeps a dry run (cleanup without autoFix) from touching anything', async () => {
    const { task } = await taskIn(h.tasks, 'RUNNING');
    h.clock.advance(TIMEOUT * 2);
    const before = await snapshot(h.prisma, task.id);
    const report = await sweep(deps(), { rules: oneTimeout(TIMEOUT), action: 'cancel', actor: 'operator', trigger: 'cleanup', dryRun: true });
    expect(report.found).toHaveLength(1);
    expect(report.handled).toHaveLength(0);
    expect(await snapshot(h.prisma, task.id)).toEqual(before);
    expect(await h.prisma.monitorSweep.count()).toBe(0);
  });

  if (kind === 'postgres') {
    it('lets only one instance sweep: a scheduled sweep skips while another connection holds the lock', async () => {
      const { task } = await taskIn(h.tasks, 'RUNNING');
      h.clock.advance(TIMEOUT * 2);
      const other = await database.connect!();
      await other.query('SELECT pg_advisory_lock($1)', [0x7a5c_5eed]);
      const skipped = await run('cancel');
      expect(skipped).toMatchObject({ ran: false, scanned: 0, found: [] });
      expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');

      // A manual sweep waits for the lock instead of skipping.
      const manual = run('cancel', 'manual');
      await new Promise((r) => setTimeout(r, 200));
      await other.query('SELECT pg_advisory_unlock($1)', [0x7a5c_5eed]);
      expect((await manual).handled).toHaveLength(1);
    });
  } else {
    it('takes and releases the sweep lock on PGlite too', async () => {
      expect((await run('cancel')).ran).toBe(true);
      expect((await run('cancel')).ran).toBe(true);
    });
  }

  it('runs on a timer and never overlaps its sweeps', async () => {
    const log = pino({ level: 'silent' });
    const monitor = createMonitor({ ...deps(), settings: { enabled: true, intervalMs: 40, heartbeatTimeoutMs: TIMEOUT, stallTimeoutMs: TIMEOUT, action: 'cancel' }, log });
    monitor.start();
    expect(monitor.status()).toMatchObject({ running: true, nextSweepAt: expect.any(Date) });
    await waitFor(async () => (await h.prisma.monitorSweep.count()) >= 3);
    const manual = await Promise.all([monitor.sweepNow(), monitor.sweepNow()]);
    expect(manual.every((r) => r.ran)).toBe(true);
    const sweeps = await h.prisma.monitorSweep.findMany({ orderBy: { id: 'asc' } });
    for (let i = 1; i < sweeps.length; i++) expect(sweeps[i]!.startedAt >= sweeps[i - 1]!.finishedAt).toBe(true);
    await monitor.stop();
    expect(monitor.status()).toMatchObject({ running: false, nextSweepAt: null });
  });
});

describe('a monitor whose database went away', () => {
  it('logs each failed sweep, counts them, and keeps its timer', async () => {
    const database = await openTestDatabase('pglite');
    const h = taskHarness(database);
    const errors: unknown[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line)) });
    const monitor = createMonitor({
      prisma: h.prisma,
      tasks: h.tasks,
      clock: h.clock,
      bus: h.bus,
      alerts: h.alerts,
      settings: { enabled: true, intervalMs: 30, heartbeatTimeoutMs: TIMEOUT, stallTimeoutMs: TIMEOUT, action: 'cancel' },
      log,
    });
    await database.close();
    monitor.start();
    await waitFor(async () => monitor.status().consecutiveFailures >= 3);
    expect(monitor.status()).toMatchObject({ running: true, lastError: expect.any(String) });
    expect(errors.length).toBeGreaterThanOrEqual(3);
    await monitor.stop();
  });
});

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
