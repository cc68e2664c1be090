import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { StuckAction } from '../src/tasks/stuck.js';
import type { StuckAlert } from '../src/events.js';
import { createMonitor } from '../src/monitor/monitor.js';
import { resolveStuck } from '../src/monitor/resolve-stuck.js';
import { createCommit } from '../src/tasks/unit-of-work.js';
import { sweep } from '../src/monitor/sweep.js';
import { detectStuck, oneTimeout } from '../src/tasks/stuck.js';
import { describeEachDatabase, openTestDatabase, useTestDatabase } from './support/databases.js';
import { codeOf, snapshot, taskHarness, taskIn, useTaskHarness } from './support/tasks.js';

const MINUTE = 60_000;
const TIMEOUT = 60 * MINUTE;

describeEachDatabase('stuck detection and the monitor [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const h = useTaskHarness(database);

  const deps = () => ({ prisma: h.prisma, commit: h.commit, tasks: h.tasks, clock: h.clock, bus: h.bus, alerts: h.alerts });
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

    // The retry waits out its backoff (RETRY_BACKOFF, 30 s ±10% by default) before it is claimable.
    expect(await h.tasks.claim('w2')).toBeNull();
    h.clock.advance(33_000);
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

  it('counts as alerted only the stuck alerts the outbox took: a cleanup of an episode already reported alerts nobody again', async () => {
    await taskIn(h.tasks, 'RUNNING', 'reported, then cleaned up');
    h.clock.advance(TIMEOUT + MINUTE);
    const reported = await run('none', 'manual');
    expect(reported.handled).toHaveLength(1);
    expect(reported.alerted).toBe(1);
    // The same episode: the cleanup cancels the task, and its alert is the one the outbox already holds.
    const cleaned = await sweep(deps(), { rules: oneTimeout(TIMEOUT), action: 'cancel', actor: 'operator', trigger: 'cleanup' });
    expect(cleaned.handled.map((t) => t.outcome)).toEqual(['cancel']);
    expect(cleaned.alerted).toBe(0);
    expect(await h.prisma.alert.count({ where: { rule: 'task.stuck' } })).toBe(1);
  });

  it('spares a worker that comes back between detection and action', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', 'slow network');
    h.clock.advance(TIMEOUT + MINUTE);
    const seen = (await h.tasks.get(task.id))!;
    const verdict = detectStuck(seen, h.clock.now(), oneTimeout(TIMEOUT))!;
    expect(verdict.reason).toBe('NO_HEARTBEAT');
    await h.tasks.reportProgress(task.id, leaseToken!); // the heartbeat lands first
    expect(await resolveStuck(h.prisma, { task: seen, verdict }, 'cancel', { actor: 'monitor' }, h.clock.now(), h.tasks.retryBackoff)).toBeNull();
    expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');
  });

  it('lets exactly one of a racing progress report and sweep win, every time', async () => {
    const outcomes = { reportFirst: 0, sweepFirst: 0 };
    for (let round = 0; round < 8; round++) {
      await database.reset();
      const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', `race ${round}`);
      h.clock.advance(TIMEOUT + MINUTE);
      const beat = () => codeOf(() => h.tasks.reportProgress(task.id, leaseToken!, { progress: 50 }));
      let code: string;
      let report: Awaited<ReturnType<typeof run>>;
      if (kind === 'postgres' && round % 4 === 3) {
        // The report lands after the sweep read the task as stuck, before it acts (another connection).
        const tasks = Object.create(h.tasks) as typeof h.tasks;
        let landed!: Promise<string>;
        tasks.stuckAt = async (tx, now, rules) => {
          const rows = await h.tasks.stuckAt(tx, now, rules);
          await (landed = beat());
          return rows;
        };
        report = await sweep({ ...deps(), tasks }, { rules: oneTimeout(TIMEOUT), action: 'cancel', actor: 'monitor', trigger: 'manual' });
        code = await landed;
        expect(report.found).toHaveLength(1);
      } else if (round % 2) {
        [code, report] = await Promise.all([beat(), run('cancel', 'manual')]);
      } else {
        [report, code] = await Promise.all([run('cancel', 'manual'), beat()]);
      }
      const { task: final, events } = await snapshot(h.prisma, task.id);
      if (code === 'OK') {
        // The report landed first: the sweep left the task alone.
        outcomes.reportFirst += 1;
        expect(report.handled).toEqual([]);
        expect(final!.status).toBe('RUNNING');
        expect(events.map((e) => e.type)).toEqual(['CREATED', 'STARTED', 'PROGRESS']);
      } else {
        outcomes.sweepFirst += 1;
        expect(code).toBe('LEASE_MISMATCH');
        expect(report.handled).toHaveLength(1);
        expect(final).toMatchObject({ status: 'CANCELLED', lastHeartbeatAt: task.lastHeartbeatAt });
      }
    }
    // Print how the rounds fell, so a run where one side always won is visible.
    console.log(`progress report vs sweep [${kind}]:`, outcomes);
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

  const SWEEP_LOCK = 0x7a5c_5eed;
  /** Advisory locks on the sweep key, held or awaited, as the database sees them from `db`. */
  const sweepLocks = async (db: Pick<typeof h.prisma, '$queryRaw'>) => {
    const rows = await db.$queryRaw<{ granted: boolean }[]>`
      SELECT granted FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = ${SWEEP_LOCK}::bigint::oid`;
    return { held: rows.filter((r) => r.granted).length, waiting: rows.filter((r) => !r.granted).length };
  };

  it('holds the sweep lock while it sweeps, and releases it with its transaction', async () => {
    await taskIn(h.tasks, 'RUNNING');
    let during: Awaited<ReturnType<typeof sweepLocks>> | undefined;
    const tasks = Object.create(h.tasks) as typeof h.tasks;
    tasks.stuckAt = async (tx, now, rules) => {
      during = await sweepLocks(tx);
      return h.tasks.stuckAt(tx, now, rules);
    };
    for (const trigger of ['schedule', 'manual'] as const) {
      during = undefined;
      const report = await sweep({ ...deps(), tasks }, { rules: oneTimeout(TIMEOUT), action: 'cancel', actor: 'monitor', trigger });
      expect(report.ran).toBe(true);
      expect(during, trigger).toEqual({ held: 1, waiting: 0 });
      expect(await sweepLocks(h.prisma), trigger).toEqual({ held: 0, waiting: 0 });
    }
  });

  if (kind === 'postgres') {
    it('lets only one instance sweep: a scheduled sweep skips while another connection holds the lock', async () => {
      const { task } = await taskIn(h.tasks, 'RUNNING');
      h.clock.advance(TIMEOUT * 2);
      const other = await database.connect!();
      await other.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK]);
      const skipped = await run('cancel');
      expect(skipped).toMatchObject({ ran: false, scanned: 0, found: [] });
      expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');

      // A manual sweep waits for the lock instead of skipping: it is still pending while the lock is held.
      let settled = false;
      const manual = run('cancel', 'manual').finally(() => (settled = true));
      await waitFor(async () => (await sweepLocks(h.prisma)).waiting === 1);
      expect(settled).toBe(false);
      expect((await h.tasks.get(task.id))!.status).toBe('RUNNING');
      await other.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK]);
      expect((await manual).handled).toHaveLength(1);
    });
  }

  it('spreads its timer by ±10% around the interval', async () => {
    const intervalMs = 600_000; // no sweep fires during the test
    const monitor = createMonitor({
      ...deps(),
      settings: { enabled: true, intervalMs, heartbeatTimeoutMs: TIMEOUT, stallTimeoutMs: TIMEOUT, action: 'cancel' },
      log: pino({ level: 'silent' }),
    });
    const delays: number[] = [];
    for (let i = 0; i < 60; i++) {
      const before = Date.now();
      monitor.start();
      const next = monitor.status().nextSweepAt!.getTime();
      delays.push((next - before) / intervalMs);
      await monitor.stop();
    }
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0.9);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1.1 + 50 / intervalMs);
    // Spread out, not all at one point: 60 uniform draws span well over half the ±10% band.
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(0.1);
  });

  it('runs on a timer and never overlaps its sweeps', async () => {
    // Every sweep is made slow before it opens its transaction, and counted while in flight.
    let inFlight = 0;
    let peak = 0;
    let started = 0;
    const prisma = new Proxy(h.prisma, {
      get(target, property) {
        if (property !== '$transaction') return Reflect.get(target, property);
        return async (...args: Parameters<typeof target.$transaction>) => {
          started += 1;
          peak = Math.max(peak, ++inFlight);
          try {
            await new Promise((r) => setTimeout(r, 30));
            return await (target.$transaction as (...a: unknown[]) => Promise<unknown>)(...args);
          } finally {
            inFlight -= 1;
          }
        };
      },
    });
    const log = pino({ level: 'silent' });
    const commit = createCommit({ prisma, bus: h.bus, alerts: h.alerts });
    const monitor = createMonitor({
      ...deps(),
      prisma,
      commit,
      settings: { enabled: true, intervalMs: 20, heartbeatTimeoutMs: TIMEOUT, stallTimeoutMs: TIMEOUT, action: 'cancel' },
      log,
    });
    monitor.start();
    expect(monitor.status()).toMatchObject({ running: true, nextSweepAt: expect.any(Date) });
    await waitFor(() => started >= 2);
    // Manual sweeps and a cleanup land on top of the timer's: they queue behind it.
    const manual = await Promise.all([
      monitor.sweepNow(),
      monitor.sweepNow(),
      monitor.cleanup({ timeoutMs: TIMEOUT, autoFix: false, action: 'cancel', actor: 'operator' }),
    ]);
    expect(manual.every((r) => r.ran)).toBe(true);
    await waitFor(async () => (await h.prisma.monitorSweep.count()) >= 5);
    await monitor.stop();
    expect(started).toBeGreaterThanOrEqual(5);
    expect(peak).toBe(1);
    expect(monitor.status()).toMatchObject({ running: false, nextSweepAt: null });
  });
});

describe('the order of stuck reasons', () => {
  const startedAt = new Date('2026-03-01T09:00:00Z');
  const at = (minutes: number) => new Date(startedAt.getTime() + minutes * MINUTE);
  const running = { status: 'RUNNING' as const, attempt: 1, startedAt, timeoutMinutes: 30, heartbeatTimeoutSeconds: null, stallTimeoutMinutes: null };

  it('says NO_HEARTBEAT before OVERTIME before NO_PROGRESS when more than one holds', () => {
    // Silent, over its own limit and without progress, all at once: a dead worker first.
    const silent = { ...running, lastHeartbeatAt: at(1), lastProgressAt: at(0) };
    expect(detectStuck(silent, at(200), oneTimeout(TIMEOUT))?.reason).toBe('NO_HEARTBEAT');
    // Heartbeating, over its limit and frozen: over time before frozen.
    const frozen = { ...running, lastHeartbeatAt: at(199), lastProgressAt: at(0) };
    expect(detectStuck(frozen, at(200), oneTimeout(TIMEOUT))?.reason).toBe('OVERTIME');
    // The same without a limit of its own: frozen.
    expect(detectStuck({ ...frozen, timeoutMinutes: null }, at(200), oneTimeout(TIMEOUT))?.reason).toBe('NO_PROGRESS');
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
      commit: h.commit,
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
