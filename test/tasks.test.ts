import { expect, it } from 'vitest';
import { sweep } from '../src/monitor/sweep.js';
import { TaskStatus } from '../src/tasks/model.js';
import { oneTimeout } from '../src/tasks/stuck.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { allStatuses, codeOf, snapshot, taskIn, useTaskHarness } from './support/tasks.js';

describeEachDatabase('task lifecycle [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const h = useTaskHarness(database);

  it('creates a pending task with defaults and records who created it', async () => {
    const task = await h.tasks.create({ name: 'SMA cross AAPL 2015-2024', params: { fast: 10, slow: 50 } });
    expect(task).toMatchObject({
      status: 'PENDING',
      kind: 'backtest',
      progress: 0,
      attempt: 0,
      maxAttempts: 3,
      params: { fast: 10, slow: 50 },
      createdAt: h.clock.now(),
    });
    const { events } = await snapshot(h.prisma, task.id);
    expect(events).toMatchObject([{ type: 'CREATED', fromStatus: null, toStatus: 'PENDING', actor: 'api' }]);
  });

  // What each operation does from each status: the state machine, both ways.
  const matrix: Record<string, Record<TaskStatus, string>> = {
    start: { PENDING: 'OK', RUNNING: 'INVALID_TRANSITION', COMPLETED: 'INVALID_TRANSITION', FAILED: 'INVALID_TRANSITION', CANCELLED: 'INVALID_TRANSITION' },
    reportProgress: { PENDING: 'LEASE_MISMATCH', RUNNING: 'OK', COMPLETED: 'LEASE_MISMATCH', FAILED: 'LEASE_MISMATCH', CANCELLED: 'LEASE_MISMATCH' },
    complete: { PENDING: 'LEASE_MISMATCH', RUNNING: 'OK', COMPLETED: 'LEASE_MISMATCH', FAILED: 'LEASE_MISMATCH', CANCELLED: 'LEASE_MISMATCH' },
    fail: { PENDING: 'LEASE_MISMATCH', RUNNING: 'OK', COMPLETED: 'LEASE_MISMATCH', FAILED: 'LEASE_MISMATCH', CANCELLED: 'LEASE_MISMATCH' },
    release: { PENDING: 'LEASE_MISMATCH', RUNNING: 'OK', COMPLETED: 'LEASE_MISMATCH', FAILED: 'LEASE_MISMATCH', CANCELLED: 'LEASE_MISMATCH' },
    stop: { PENDING: 'OK', RUNNING: 'OK', COMPLETED: 'INVALID_TRANSITION', FAILED: 'INVALID_TRANSITION', CANCELLED: 'INVALID_TRANSITION' },
    forceCancel: {
      PENDING: 'INVALID_TRANSITION',
      RUNNING: 'OK',
      COMPLETED: 'INVALID_TRANSITION',
      FAILED: 'INVALID_TRANSITION',
      CANCELLED: 'INVALID_TRANSITION',
    },
    forceFail: { PENDING: 'INVALID_TRANSITION', RUNNING: 'OK', COMPLETED: 'INVALID_TRANSITION', FAILED: 'INVALID_TRANSITION', CANCELLED: 'INVALID_TRANSITION' },
    delete: { PENDING: 'TASK_NOT_TERMINAL', RUNNING: 'TASK_NOT_TERMINAL', COMPLETED: 'OK', FAILED: 'OK', CANCELLED: 'OK' },
  };
  const expectedStatus: Record<string, TaskStatus | 'GONE'> = {
    start: 'RUNNING',
    reportProgress: 'RUNNING',
    complete: 'COMPLETED',
    fail: 'FAILED',
    release: 'PENDING',
    stop: 'CANCELLED',
    forceCancel: 'CANCELLED',
    forceFail: 'FAILED',
    delete: 'GONE',
  };

  for (const [operation, outcomes] of Object.entries(matrix)) {
    for (const from of allStatuses) {
      it(`${operation} from ${from}: ${outcomes[from]}`, async () => {
        const { task, leaseToken = 'no-lease-was-ever-issued' } = await taskIn(h.tasks, from);
        const before = await snapshot(h.prisma, task.id);
        const run = {
          start: () => h.tasks.start(task.id, 'worker-b'),
          reportProgress: () => h.tasks.reportProgress(task.id, leaseToken, { progress: 42, message: 'simulating' }),
          complete: () => h.tasks.complete(task.id, leaseToken, { sharpe: 1.4 }),
          fail: () => h.tasks.fail(task.id, leaseToken, 'out of memory'),
          release: () => h.tasks.release(task.id, leaseToken, 'worker shutting down'),
          stop: () => h.tasks.stop(task.id, { reason: 'not needed' }),
          forceCancel: () => h.tasks.forceComplete(task.id, { reason: 'stuck at 90%' }),
          forceFail: () => h.tasks.forceComplete(task.id, { status: 'FAILED', reason: 'stuck at 90%' }),
          delete: () => h.tasks.delete(task.id),
        }[operation]!;
        const code = await codeOf(run);
        expect(code).toBe(outcomes[from]);
        const after = await snapshot(h.prisma, task.id);
        if (code === 'OK') {
          const status = expectedStatus[operation];
          if (status === 'GONE') {
            expect(after.task).toBeNull();
            expect(after.events.at(-1)).toMatchObject({ type: 'DELETED', fromStatus: from, toStatus: null });
          } else {
            expect(after.task!.status).toBe(status);
            expect(after.events).toHaveLength(before.events.length + 1);
            expect(after.events.at(-1)).toMatchObject({ fromStatus: from, toStatus: status });
          }
        } else {
          // A refused write changes nothing, not even the history.
          expect(after).toEqual(before);
        }
      });
    }
  }

  it('explains a refusal with the current status', async () => {
    const { task } = await taskIn(h.tasks, 'COMPLETED');
    await expect(h.tasks.stop(task.id)).rejects.toMatchObject({ code: 'INVALID_TRANSITION', details: { status: 'COMPLETED' } });
    const { task: running } = await taskIn(h.tasks, 'RUNNING');
    await expect(h.tasks.delete(running.id)).rejects.toMatchObject({
      code: 'TASK_NOT_TERMINAL',
      message: expect.stringContaining('stop or force-complete it first'),
    });
  });

  it('answers NOT_FOUND for a well-formed id that does not exist, and BAD_USER_INPUT for a malformed one', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const run of [
      () => h.tasks.start(missing, 'w'),
      () => h.tasks.stop(missing),
      () => h.tasks.forceComplete(missing),
      () => h.tasks.delete(missing),
      () => h.tasks.reportProgress(missing, 'lease', { progress: 1 }),
      () => h.tasks.complete(missing, 'lease', null),
    ]) {
      expect(await codeOf(run)).toBe('NOT_FOUND');
    }
    expect(await codeOf(() => h.tasks.stop('12; DROP TABLE "Task"'))).toBe('BAD_USER_INPUT');
    expect(await h.tasks.get(missing)).toBeNull();
  });

  it('starts a task with a fresh lease and counts the attempt', async () => {
    const task = await h.tasks.create({ name: 'bt' });
    const { task: running, leaseToken } = await h.tasks.start(task.id, 'worker-7');
    expect(leaseToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(running).toMatchObject({ status: 'RUNNING', attempt: 1, workerId: 'worker-7', startedAt: h.clock.now(), lastHeartbeatAt: h.clock.now() });
  });

  it('claims the oldest pending task of the asked kinds, and null when there is none', async () => {
    const old = await h.tasks.create({ name: 'old', kind: 'backtest' });
    h.clock.advance(1000);
    await h.tasks.create({ name: 'new', kind: 'backtest' });
    const other = await h.tasks.create({ name: 'optimise', kind: 'optimize' });
    const first = await h.tasks.claim('w1', ['backtest']);
    expect(first!.task.id).toBe(old.id);
    expect((await h.tasks.claim('w2', ['optimize']))!.task.id).toBe(other.id);
    expect((await h.tasks.claim('w3', ['backtest']))!.task.name).toBe('new');
    expect(await h.tasks.claim('w4', ['backtest'])).toBeNull();
    expect(await h.tasks.claim('w4')).toBeNull();
  });

  it('gives each of many concurrent claimers a different task', async () => {
    for (let i = 0; i < 20; i++) await h.tasks.create({ name: `bt ${i}` });
    const leases = await Promise.all(Array.from({ length: 25 }, (_, i) => h.tasks.claim(`w${i}`)));
    const claimed = leases.filter((l) => l !== null).map((l) => l!.task.id);
    expect(claimed).toHaveLength(20);
    expect(new Set(claimed).size).toBe(20);
  });

  it('records progress changes, and keeps a bare heartbeat out of the history', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    const startedAt = task.startedAt!;
    h.clock.advance(60_000);
    const p = await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    expect(p).toMatchObject({ progress: 90, message: 'saving results', lastProgressAt: h.clock.now(), lastHeartbeatAt: h.clock.now() });
    h.clock.advance(60_000);
    const beat = await h.tasks.reportProgress(task.id, leaseToken!);
    expect(beat.lastHeartbeatAt).toEqual(h.clock.now());
    expect(beat.lastProgressAt).toEqual(p.lastProgressAt); // a heartbeat is not progress
    h.clock.advance(60_000);
    const same = await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90 });
    expect(same.lastProgressAt).toEqual(p.lastProgressAt); // nor is reporting the same value again
    const { events } = await snapshot(h.prisma, task.id);
    expect(events.map((e) => e.type)).toEqual(['CREATED', 'STARTED', 'PROGRESS']);
    expect(events[2]).toMatchObject({ progress: 90, message: 'saving results', actor: 'worker-a' });
    expect(startedAt).toBeInstanceOf(Date);
  });

  it.each([
    [{ progress: 101 }],
    [{ progress: -1 }],
    [{ progress: Number.NaN }],
    [{ progress: Number.POSITIVE_INFINITY }],
    [{ progress: 50, message: 'x'.repeat(1001) }],
  ])('rejects progress %o with BAD_USER_INPUT and writes nothing', async (report) => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    const before = await snapshot(h.prisma, task.id);
    expect(await codeOf(() => h.tasks.reportProgress(task.id, leaseToken!, report))).toBe('BAD_USER_INPUT');
    expect(await snapshot(h.prisma, task.id)).toEqual(before);
  });

  it.each([
    [{ name: '' }],
    [{ name: '   ' }],
    [{ name: 'x'.repeat(201) }],
    [{ name: 'ok', params: { blob: 'x'.repeat(70_000) } }],
    [{ name: 'ok', maxAttempts: 0 }],
    [{ name: 'ok', maxAttempts: 1.5 }],
    [{ name: 'ok', timeoutMinutes: -5 }],
    [{ name: 'ok', timeoutMinutes: Number.NaN }],
    [{ name: 'nul \u0000 inside' }],
    [{ name: 'ok', params: { text: 'nul \u0000 inside' } }],
    [{ name: 'ok', kind: '' }],
  ])('refuses to create %o and stores nothing', async (input) => {
    expect(await codeOf(() => h.tasks.create(input))).toBe('BAD_USER_INPUT');
    expect(await h.prisma.task.count()).toBe(0);
    expect(await h.prisma.taskEvent.count()).toBe(0);
  });

  it('completes atomically: result, status, progress 100 and completedAt together, and the lease ends', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 90, message: 'saving results' });
    h.clock.advance(5000);
    const done = await h.tasks.complete(task.id, leaseToken!, { sharpe: 1.7, trades: [1, 2, 3] });
    expect(done).toMatchObject({
      status: 'COMPLETED',
      progress: 100,
      result: { sharpe: 1.7, trades: [1, 2, 3] },
      completedAt: h.clock.now(),
      leaseToken: null,
    });
    expect(await codeOf(() => h.tasks.complete(task.id, leaseToken!, { again: true }))).toBe('LEASE_MISMATCH');
  });

  it('refuses a result over 1 MB and leaves the task running', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    const before = await snapshot(h.prisma, task.id);
    expect(await codeOf(() => h.tasks.complete(task.id, leaseToken!, { equity: 'x'.repeat(1024 * 1024) }))).toBe('BAD_USER_INPUT');
    expect(await snapshot(h.prisma, task.id)).toEqual(before);
  });

  it('fences a zombie: once its task is requeued and running under a newer lease, the old lease can write nothing', async () => {
    const created = await h.tasks.create({ name: 'bt', maxAttempts: 3 });
    const zombie = await h.tasks.start(created.id, 'worker-zombie');
    h.clock.advance(2 * 3_600_000);
    const sweepDeps = { commit: h.commit, tasks: h.tasks, clock: h.clock, bus: h.bus, alerts: h.alerts };
    await sweep(sweepDeps, { rules: oneTimeout(3_600_000), action: 'retry', actor: 'monitor', trigger: 'manual' });
    h.clock.advance(60_000); // past its retry backoff (30 s ±10%)
    const fresh = await h.tasks.claim('worker-fresh');
    expect(fresh!.task).toMatchObject({ id: created.id, status: 'RUNNING', attempt: 2 });
    h.clock.advance(60_000);
    // The task is RUNNING: only the lease tells the zombie apart from the worker that holds it now.
    const after = await snapshot(h.prisma, created.id);
    for (const [name, write] of Object.entries({
      progress: () => h.tasks.reportProgress(created.id, zombie.leaseToken, { progress: 100 }),
      heartbeat: () => h.tasks.reportProgress(created.id, zombie.leaseToken),
      complete: () => h.tasks.complete(created.id, zombie.leaseToken, { stale: true }),
      fail: () => h.tasks.fail(created.id, zombie.leaseToken, 'late failure'),
      release: () => h.tasks.release(created.id, zombie.leaseToken, 'late release'),
    })) {
      expect(await codeOf(write), name).toBe('LEASE_MISMATCH');
    }
    // Not even lastHeartbeatAt moved: a stale heartbeat would hide a dead task from the monitor.
    expect(await snapshot(h.prisma, created.id)).toEqual(after);
    await expect(h.tasks.complete(created.id, fresh!.leaseToken, { fresh: true })).resolves.toMatchObject({ result: { fresh: true } });
  });

  it('fences a zombie whose task was force-completed: every write of the old lease is refused', async () => {
    const created = await h.tasks.create({ name: 'bt', maxAttempts: 3 });
    const zombie = await h.tasks.start(created.id, 'worker-zombie');
    await h.tasks.forceComplete(created.id, { reason: 'worker unresponsive' });
    const after = await snapshot(h.prisma, created.id);
    for (const write of [
      () => h.tasks.reportProgress(created.id, zombie.leaseToken, { progress: 100 }),
      () => h.tasks.reportProgress(created.id, zombie.leaseToken),
      () => h.tasks.complete(created.id, zombie.leaseToken, { stale: true }),
      () => h.tasks.fail(created.id, zombie.leaseToken, 'late failure'),
    ]) {
      expect(await codeOf(write)).toBe('LEASE_MISMATCH');
    }
    expect(await snapshot(h.prisma, created.id)).toEqual(after);
  });

  it('fences a zombie whose task was claimed again by another worker', async () => {
    const created = await h.tasks.create({ name: 'bt' });
    const zombie = await h.tasks.start(created.id, 'worker-1');
    // The monitor requeues it (see monitor tests); here the same effect through the database.
    await h.prisma.task.update({ where: { id: created.id }, data: { status: 'PENDING', leaseToken: null } });
    const fresh = await h.tasks.claim('worker-2');
    expect(fresh!.task).toMatchObject({ id: created.id, attempt: 2 });
    expect(await codeOf(() => h.tasks.complete(created.id, zombie.leaseToken, { stale: true }))).toBe('LEASE_MISMATCH');
    await expect(h.tasks.complete(created.id, fresh!.leaseToken, { fresh: true })).resolves.toMatchObject({ result: { fresh: true } });
  });

  it('lets a worker hand its task back, ending its lease; the next claim starts afresh', async () => {
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 40, message: 'halfway' });
    const released = await h.tasks.release(task.id, leaseToken!, 'deploy');
    expect(released).toMatchObject({ status: 'PENDING', workerId: null, progress: 0, message: null, startedAt: null, attempt: 1 });
    expect((await h.tasks.history({ taskId: task.id })).at(-1)).toMatchObject({ type: 'REQUEUED', actor: 'worker-a', reason: 'deploy' });
    expect(await codeOf(() => h.tasks.reportProgress(task.id, leaseToken!))).toBe('LEASE_MISMATCH');
    expect((await h.tasks.claim('worker-b'))!.task).toMatchObject({ id: task.id, attempt: 2, workerId: 'worker-b' });
  });

  it('lets exactly one of a racing complete and force-complete win, every time', async () => {
    for (let round = 0; round < 40; round++) {
      const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING', `race ${round}`);
      const outcomes = await Promise.allSettled([
        h.tasks.complete(task.id, leaseToken!, { round }),
        h.tasks.forceComplete(task.id, { status: 'FAILED', reason: 'race' }),
      ]);
      const winners = outcomes.filter((o) => o.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(['LEASE_MISMATCH', 'INVALID_TRANSITION']).toContain(loser.reason.code);
      const { task: final, events } = await snapshot(h.prisma, task.id);
      const won = (winners[0] as PromiseFulfilledResult<{ status: string }>).value;
      expect(final!.status).toBe(won.status);
      expect(events.filter((e) => e.toStatus === 'COMPLETED' || e.toStatus === 'FAILED')).toHaveLength(1);
      if (final!.status === 'COMPLETED') expect(final!.result).toEqual({ round });
      else expect(final!.result).toBeNull();
    }
  });

  it('keeps the history after a delete, ending with who deleted it', async () => {
    const { task } = await taskIn(h.tasks, 'COMPLETED');
    await h.tasks.delete(task.id, { actor: 'ops-alice' });
    const events = await h.tasks.history({ taskId: task.id });
    expect(events.map((e) => `${e.type}:${e.actor}`)).toEqual(['CREATED:api', 'STARTED:worker-a', 'COMPLETED:worker-a', 'DELETED:ops-alice']);
    expect(await codeOf(() => h.tasks.delete(task.id))).toBe('NOT_FOUND');
  });

  it('publishes each recorded change after it is written, its history entry exactly as stored', async () => {
    const updates = h.bus.subscribe('task:updated');
    const { task, leaseToken } = await taskIn(h.tasks, 'RUNNING');
    await h.tasks.reportProgress(task.id, leaseToken!); // a bare heartbeat: nothing to publish
    await h.tasks.reportProgress(task.id, leaseToken!, { progress: 10 }, 'ci-token');
    // No actor given: the entry names the worker that held the task.
    await h.tasks.complete(task.id, leaseToken!, { sharpe: 1.2 });
    await h.tasks.delete(task.id, { actor: 'ops-alice' });
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push((await updates.next()).value);
    await updates.return!();
    expect(seen.map((c) => [c.event.type, c.event.actor, c.event.toStatus, c.event.progress])).toEqual([
      ['CREATED', 'api', 'PENDING', 0],
      ['STARTED', 'worker-a', 'RUNNING', 0],
      ['PROGRESS', 'worker-a', 'RUNNING', 10],
      ['COMPLETED', 'worker-a', 'COMPLETED', 100],
      ['DELETED', 'ops-alice', null, 100],
    ]);
    // Straight from the table: the history read serves only settled entries, and other test runs may hold a transaction open.
    const { events: stored } = await snapshot(h.prisma, task.id);
    expect(seen.map((c) => c.event)).toEqual(stored);
  });
});
