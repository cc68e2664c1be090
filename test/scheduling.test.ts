import { expect, it } from 'vitest';
import { openDatabase } from '../src/db/open.js';
import { sweep } from '../src/monitor/sweep.js';
import { TaskStatus } from '../src/tasks/model.js';
import { oneTimeout } from '../src/tasks/stuck.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { codeOf, snapshot, taskHarness, useTaskHarness } from './support/tasks.js';

describeEachDatabase('scheduling [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const h = useTaskHarness(database, {}, {}, { retryBackoff: { initialSeconds: 30, factor: 2, maxSeconds: 1800 }, kindLimits: {} });

  const claimAll = async (worker = 'w1', kinds?: string[]) => {
    const names: string[] = [];
    for (;;) {
      const lease = await h.tasks.claim(worker, kinds);
      if (!lease) return names;
      names.push(lease.task.name);
    }
  };
  const inSeconds = (s: number) => new Date(h.clock.now().getTime() + s * 1000);

  it('claims by priority, then runAt (or createdAt), then id; never a task before its runAt', async () => {
    await h.tasks.create({ name: 'sweep 1' });
    h.clock.advance(1000);
    await h.tasks.create({ name: 'sweep 2' });
    await h.tasks.create({ name: 'research', priority: 10 });
    await h.tasks.create({ name: 'urgent later', priority: 50, runAt: inSeconds(60) });
    await h.tasks.create({ name: 'backdated', runAt: new Date(h.clock.now().getTime() - 10_000) });
    await h.tasks.create({ name: 'low', priority: -5 });
    expect(await claimAll()).toEqual(['research', 'backdated', 'sweep 1', 'sweep 2', 'low']);
    h.clock.advance(59_000);
    expect(await h.tasks.claim('w1')).toBeNull();
    h.clock.advance(1000);
    expect((await h.tasks.claim('w1'))?.task.name).toBe('urgent later');
  });

  it('a batch keeps its submission order within one priority', async () => {
    await h.tasks.createMany(Array.from({ length: 30 }, (_, i) => ({ name: `p${i}` })));
    expect(await claimAll()).toEqual(Array.from({ length: 30 }, (_, i) => `p${i}`));
  });

  it('a dependant is claimable only once every dependency COMPLETED; start by id refuses it too', async () => {
    const a = await h.tasks.create({ name: 'backtest a' });
    const b = await h.tasks.create({ name: 'backtest b' });
    const report = await h.tasks.create({ name: 'report', priority: 100, dependsOn: [a.id, b.id] });
    expect((await h.tasks.dependenciesOf(report.id)).map((t) => t.name).sort()).toEqual(['backtest a', 'backtest b']);
    expect((await h.tasks.dependantsOf(a.id)).map((t) => t.id)).toEqual([report.id]);
    expect(await h.services.queues.waitingFor(report)).toBe('dependency: 2 not completed yet');
    expect(await codeOf(() => h.tasks.start(report.id, 'w1'))).toBe('TASK_NOT_READY');
    const first = (await h.tasks.claim('w1'))!;
    const second = (await h.tasks.claim('w2'))!;
    expect([first.task.name, second.task.name].sort()).toEqual(['backtest a', 'backtest b']);
    expect(await h.tasks.claim('w3')).toBeNull();
    await h.tasks.complete(first.task.id, first.leaseToken, {});
    expect(await h.tasks.claim('w3')).toBeNull();
    expect(await h.services.queues.waitingFor(report)).toBe('dependency: 1 not completed yet');
    await h.tasks.complete(second.task.id, second.leaseToken, {});
    expect(await h.services.queues.waitingFor(report)).toBeNull();
    expect((await h.tasks.claim('w3'))?.task.id).toBe(report.id);
  });

  it('a failure cancels the dependants three levels deep (DEPENDENCY_FAILED by scheduler), with their events and alerts', async () => {
    const [root, mid, leaf, leaf2, other] = await h.tasks.createMany([
      { name: 'root' },
      { name: 'mid', dependsOnIndex: [0] },
      { name: 'leaf', dependsOnIndex: [1] },
      { name: 'leaf2', dependsOnIndex: [2, 4] },
      { name: 'unrelated' },
    ]);
    const heard: string[] = [];
    const sub = h.bus.subscribe('task:updated');
    const lease = (await h.tasks.start(root!.id, 'w1'))!;
    await h.tasks.fail(root!.id, lease.leaseToken, 'boom');
    for (const t of [mid!, leaf!, leaf2!]) {
      const { task, events } = await snapshot(h.prisma, t.id);
      expect(task?.status).toBe(TaskStatus.CANCELLED);
      expect(events.at(-1)).toMatchObject({ type: 'CANCELLED', fromStatus: 'PENDING', toStatus: 'CANCELLED', actor: 'scheduler', reason: 'DEPENDENCY_FAILED' });
    }
    expect((await h.tasks.get(other!.id))?.status).toBe(TaskStatus.PENDING);
    const alerts = await h.prisma.alert.findMany({ where: { rule: 'task.dependency_failed' }, orderBy: { id: 'asc' } });
    expect(alerts.map((a) => a.taskId).sort()).toEqual([mid!.id, leaf!.id, leaf2!.id].sort());
    expect(alerts[0]!.payload).toMatchObject({ details: { reason: 'DEPENDENCY_FAILED', dependency: { id: root!.id, status: 'FAILED' } } });
    for (let i = 0; i < 5; i++) {
      const next = await Promise.race([sub.next(), new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
      if (!next || next.done) break;
      heard.push(`${(next.value as { event: { type: string } }).event.type}`);
    }
    await sub.return?.();
    expect(heard).toEqual(['STARTED', 'FAILED', 'CANCELLED', 'CANCELLED', 'CANCELLED']);
  });

  it('stopping a pending task cancels what waits for it; a new task cannot depend on a failed one', async () => {
    const a = await h.tasks.create({ name: 'a' });
    const b = await h.tasks.create({ name: 'b', dependsOn: [a.id] });
    await h.tasks.stop(a.id);
    expect((await h.tasks.get(b.id))?.status).toBe(TaskStatus.CANCELLED);
    expect(await codeOf(() => h.tasks.create({ name: 'c', dependsOn: [a.id] }))).toBe('DEPENDENCY_FAILED');
    expect(await codeOf(() => h.tasks.create({ name: 'd', dependsOn: ['00000000-0000-4000-8000-000000000000'] }))).toBe('NOT_FOUND');
    expect(await h.prisma.task.count()).toBe(2);
  });

  it('a dependency cycle is refused and nothing is created', async () => {
    const before = await h.prisma.task.count();
    expect(
      await codeOf(() =>
        h.tasks.createMany([
          { name: 'x', dependsOnIndex: [2] },
          { name: 'y', dependsOnIndex: [0] },
          { name: 'z', dependsOnIndex: [1] },
        ]),
      ),
    ).toBe('DEPENDENCY_CYCLE');
    expect(await codeOf(() => h.tasks.createMany([{ name: 'self', dependsOnIndex: [0] }]))).toBe('DEPENDENCY_CYCLE');
    expect(await codeOf(() => h.tasks.createMany([{ name: 'out', dependsOnIndex: [1] }]))).toBe('BAD_USER_INPUT');
    expect(await codeOf(() => h.tasks.create({ name: 'single', dependsOnIndex: [0] }))).toBe('BAD_USER_INPUT');
    expect(await h.prisma.task.count()).toBe(before);
    expect(await h.prisma.taskEvent.count()).toBe(0);
  });

  it('a paused kind gives out nothing until resumed; running tasks go on', async () => {
    await h.tasks.create({ name: 'opt 1', kind: 'optimize' });
    const running = (await h.tasks.claim('w1', ['optimize']))!;
    await h.tasks.create({ name: 'opt 2', kind: 'optimize' });
    const bt = await h.tasks.create({ name: 'bt', kind: 'backtest' });
    const paused = await h.services.queues.pause('optimize');
    expect(paused).toMatchObject({ kind: 'optimize', paused: true, running: 1, pending: 1 });
    expect(await h.tasks.claim('w2', ['optimize'])).toBeNull();
    expect((await h.tasks.claim('w2'))?.task.id).toBe(bt.id);
    expect(await h.tasks.claim('w2')).toBeNull();
    await h.tasks.reportProgress(running.task.id, running.leaseToken, { progress: 50 });
    const pending = (await h.tasks.list({ status: [TaskStatus.PENDING] }))[0]!;
    expect(await h.services.queues.waitingFor(pending)).toBe('pause: kind "optimize" is paused');
    await h.services.queues.resume('optimize');
    expect((await h.tasks.claim('w2', ['optimize']))?.task.name).toBe('opt 2');
  });

  it('a kind limit holds: a full kind gives out nothing, others go on', async () => {
    await h.services.queues.setLimit('optimize', 2);
    await h.tasks.createMany([
      { name: 'o1', kind: 'optimize', priority: 5 },
      { name: 'o2', kind: 'optimize', priority: 5 },
      { name: 'o3', kind: 'optimize', priority: 5 },
      { name: 'b1', kind: 'backtest' },
    ]);
    expect(await claimAll()).toEqual(['o1', 'o2', 'b1']);
    const [queue] = (await h.services.queues.list()).filter((q) => q.kind === 'optimize');
    expect(queue).toMatchObject({ kind: 'optimize', pending: 1, running: 2, maxRunning: 2, paused: false });
    const waiting = (await h.tasks.list({ status: [TaskStatus.PENDING] }))[0]!;
    expect(await h.services.queues.waitingFor(waiting)).toBe('limit: kind "optimize" runs 2 of 2');
    expect(await codeOf(() => h.tasks.start(waiting.id, 'w9'))).toBe('TASK_NOT_READY');
    await h.services.queues.setLimit('optimize', null);
    expect(await claimAll()).toEqual(['o3']);
  });

  it('20 concurrent claimers never run more than the limit at any step', async () => {
    const limit = 3;
    const total = 40;
    await h.services.queues.setLimit('heavy', limit);
    await h.tasks.createMany(Array.from({ length: total }, (_, i) => ({ name: `heavy ${i}`, kind: 'heavy' })));
    await h.tasks.createMany(Array.from({ length: 10 }, (_, i) => ({ name: `light ${i}`, kind: 'light' })));
    // On Postgres half the claimers are a second instance: another connection pool.
    const other = kind === 'postgres' ? await openDatabase(database.target) : null;
    const second = other ? taskHarness({ ...database, db: other }) : h;
    const countRunning = async () => (await h.prisma.task.count({ where: { kind: 'heavy', status: TaskStatus.RUNNING } })) as number;
    let maxSeen = 0;
    let done = 0;
    const violations: number[] = [];
    const claimer = async (n: number) => {
      const tasks = n % 2 === 0 ? h.tasks : second.tasks;
      for (let idle = 0; idle < 50 && done < total;) {
        const lease = await tasks.claim(`claimer-${n}`, n % 5 === 0 ? undefined : ['heavy']);
        if (!lease) {
          idle++;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        if (lease.task.kind !== 'heavy') {
          await tasks.complete(lease.task.id, lease.leaseToken, {});
          continue;
        }
        const running = await countRunning();
        maxSeen = Math.max(maxSeen, running);
        if (running > limit) violations.push(running);
        await new Promise((r) => setTimeout(r, 2));
        await tasks.complete(lease.task.id, lease.leaseToken, {});
        done++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 20 }, (_, n) => claimer(n)));
    } finally {
      await other?.close();
    }
    expect(violations).toEqual([]);
    expect(maxSeen).toBeGreaterThanOrEqual(1);
    expect(maxSeen).toBeLessThanOrEqual(limit);
    expect(await h.prisma.task.count({ where: { kind: 'heavy', status: TaskStatus.COMPLETED } })).toBe(total);
  }, 120_000);

  it('a retryable failure requeues with backoff within ±10%, recorded in its history; the last attempt fails', async () => {
    const task = await h.tasks.create({ name: 'flaky', maxAttempts: 4, retryBackoff: { initialSeconds: 10, factor: 3, maxSeconds: 60 } });
    for (const [attempt, base] of [
      [1, 10],
      [2, 30],
      [3, 60],
    ] as const) {
      const lease = (await h.tasks.claim('w1'))!;
      expect(lease.task.attempt).toBe(attempt);
      const requeued = await h.tasks.fail(task.id, lease.leaseToken, 'connection reset', null, { retryable: true });
      expect(requeued.status).toBe(TaskStatus.PENDING);
      const delay = (requeued.runAt!.getTime() - h.clock.now().getTime()) / 1000;
      expect(delay).toBeGreaterThanOrEqual(base * 0.9);
      expect(delay).toBeLessThanOrEqual(base * 1.1);
      const { events } = await snapshot(h.prisma, task.id);
      expect(events.at(-1)).toMatchObject({ type: 'REQUEUED', actor: 'w1', fromStatus: 'RUNNING', toStatus: 'PENDING' });
      expect(events.at(-1)!.reason).toContain(`retry in ${delay.toFixed(1)}s`);
      expect(await h.tasks.claim('w1')).toBeNull();
      expect(await h.services.queues.waitingFor(requeued)).toBe(`delay: until ${requeued.runAt!.toISOString()}`);
      h.clock.advance(Math.ceil(delay * 1000));
    }
    const last = (await h.tasks.claim('w1'))!;
    const failed = await h.tasks.fail(task.id, last.leaseToken, 'connection reset', null, { retryable: true });
    expect(failed).toMatchObject({ status: 'FAILED', attempt: 4, error: 'connection reset' });
  });

  it("the monitor's retry waits out RETRY_BACKOFF too", async () => {
    const task = await h.tasks.create({ name: 'stuck one' });
    await h.tasks.claim('w1');
    h.clock.advance(2 * 60_000);
    await sweep(
      { commit: h.commit, tasks: h.tasks, clock: h.clock, bus: h.bus, alerts: h.alerts },
      { rules: oneTimeout(60_000), action: 'retry', actor: 'monitor', trigger: 'manual' },
    );
    const requeued = (await h.tasks.get(task.id))!;
    expect(requeued.status).toBe(TaskStatus.PENDING);
    const delay = (requeued.runAt!.getTime() - h.clock.now().getTime()) / 1000;
    expect(delay).toBeGreaterThanOrEqual(27);
    expect(delay).toBeLessThanOrEqual(33);
    const { events } = await snapshot(h.prisma, task.id);
    expect(events.at(-1)).toMatchObject({ type: 'REQUEUED', actor: 'monitor' });
    expect(events.at(-1)!.reason).toContain('retry in');
  });

  it('50 concurrent creates with one key make exactly one task and one event; another input under it is a conflict', async () => {
    const input = { name: 'nightly sweep', params: { grid: 7 }, idempotencyKey: 'sweep-2026-11-30' };
    const results = await Promise.all(Array.from({ length: 50 }, () => h.tasks.create(input)));
    expect(new Set(results.map((t) => t.id)).size).toBe(1);
    expect(await h.prisma.task.count()).toBe(1);
    expect(await h.prisma.taskEvent.count()).toBe(1);
    expect(results[0]!.idempotencyKey).toBe('sweep-2026-11-30');
    expect(await codeOf(() => h.tasks.create({ ...input, params: { grid: 8 } }))).toBe('IDEMPOTENCY_CONFLICT');
    // The key lives as long as its task.
    const lease = (await h.tasks.claim('w1'))!;
    await h.tasks.complete(lease.task.id, lease.leaseToken, {});
    await h.tasks.delete(lease.task.id);
    expect((await h.tasks.create({ ...input, params: { grid: 8 } })).id).not.toBe(results[0]!.id);
  });

  it('createTasks of 1,000 is one transaction: an invalid item rolls all back; a valid one lands whole', async () => {
    await h.tasks.create({ name: 'holder', idempotencyKey: 'taken' });
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ name: `grid ${i}`, kind: 'sweep', params: { i }, idempotencyKey: `grid-${i}` }));
    const bad = [...inputs.slice(0, 999), { name: 'not the holder', idempotencyKey: 'taken' }];
    expect(await codeOf(() => h.tasks.createMany(bad))).toBe('IDEMPOTENCY_CONFLICT');
    expect(await h.prisma.task.count()).toBe(1);
    expect(await h.prisma.taskEvent.count()).toBe(1);
    const badInput = [...inputs.slice(0, 999), { name: '' }];
    const error = await h.tasks.createMany(badInput).catch((e: unknown) => e as { code: string; details: Record<string, unknown> });
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', details: { field: 'inputs[999].name', index: 999 } });
    expect(await codeOf(() => h.tasks.createMany([...inputs, { name: 'one too many' }]))).toBe('BAD_USER_INPUT');

    const report = { name: 'report', dependsOnIndex: Array.from({ length: 100 }, (_, i) => i) };
    const created = await h.tasks.createMany([...inputs.slice(0, 999), report]);
    expect(created).toHaveLength(1000);
    expect(await h.prisma.task.count()).toBe(1001);
    expect(await h.prisma.taskDependency.count()).toBe(100);
    // Submitted again (automation retrying): the same tasks, nothing new.
    const again = await h.tasks.createMany(inputs.slice(0, 10));
    expect(again.map((t) => t.id)).toEqual(created.slice(0, 10).map((t) => t.id));
    expect(await h.prisma.taskEvent.count()).toBe(1001);
  }, 60_000);

  it('queues count ready, delayed, blocked and running per kind', async () => {
    const a = await h.tasks.create({ name: 'a', kind: 'k' });
    await h.tasks.create({ name: 'later', kind: 'k', runAt: inSeconds(600) });
    await h.tasks.create({ name: 'after a', kind: 'k', dependsOn: [a.id] });
    h.clock.advance(30_000);
    await h.tasks.create({ name: 'b', kind: 'k' });
    await h.services.queues.setLimit('idle', 4);
    expect(await h.services.queues.list()).toEqual([
      { kind: 'idle', pending: 0, delayed: 0, blocked: 0, running: 0, maxRunning: 4, paused: false, oldestReadyAgeSeconds: 0 },
      { kind: 'k', pending: 2, delayed: 1, blocked: 1, running: 0, maxRunning: null, paused: false, oldestReadyAgeSeconds: 30 },
    ]);
    await h.tasks.claim('w1', ['k']);
    expect((await h.services.queues.list()).find((q) => q.kind === 'k')).toMatchObject({ pending: 1, running: 1, oldestReadyAgeSeconds: 0 });
  });
});
