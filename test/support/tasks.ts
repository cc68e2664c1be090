import pino from 'pino';
import { manualClock } from '../../src/clock.js';
import type { AlertSettings } from '../../src/alerts/settings.js';
import type { MonitorSettings } from '../../src/monitor/monitor.js';
import type { SchedulingSettings } from '../../src/tasks/scheduling.js';
import { createEventBus } from '../../src/events.js';
import { createServices, defaultAlertSettings } from '../../src/services.js';
import type { TaskService } from '../../src/tasks/service.js';
import { TaskStatus, type Task } from '../../src/tasks/model.js';
import type { TestDatabase } from './databases.js';
import { beforeAllValue } from './fixture.js';

/** The services over a test database, with a clock the test moves and no monitor timer. */
export function taskHarness(
  database: TestDatabase,
  alerts: Partial<AlertSettings> = {},
  monitor: Partial<MonitorSettings> = {},
  scheduling?: SchedulingSettings,
) {
  const clock = manualClock(new Date('2026-03-01T09:30:00Z'));
  const bus = createEventBus();
  const services = createServices({
    prisma: database.db.prisma,
    query: database.db.query,
    clock,
    bus,
    monitor: { enabled: false, intervalMs: 60_000, heartbeatTimeoutMs: 3_600_000, stallTimeoutMs: 3_600_000, action: 'cancel', ...monitor },
    log: pino({ level: 'silent' }),
    alerts: { ...defaultAlertSettings(), ...alerts },
    scheduling,
    serialDatabase: database.kind === 'pglite',
  });
  return { clock, bus, services, commit: services.commit, tasks: services.tasks, alerts: services.alerts, prisma: database.db.prisma };
}

/** A task brought to `status` the way the API would; `leaseToken` is the one it ran under, if it ran. */
export async function taskIn(tasks: TaskService, status: TaskStatus, name = `task in ${status}`): Promise<{ task: Task; leaseToken?: string }> {
  const created = await tasks.create({ name, params: { strategy: 'sma-cross', symbol: 'AAPL' } });
  if (status === TaskStatus.PENDING) return { task: created };
  if (status === TaskStatus.CANCELLED) {
    const { leaseToken } = await tasks.start(created.id, 'worker-a');
    return { task: await tasks.stop(created.id), leaseToken };
  }
  const { task, leaseToken } = await tasks.start(created.id, 'worker-a');
  if (status === TaskStatus.RUNNING) return { task, leaseToken };
  if (status === TaskStatus.COMPLETED) return { task: await tasks.complete(task.id, leaseToken, { pnl: 1 }), leaseToken };
  return { task: await tasks.fail(task.id, leaseToken, 'boom'), leaseToken };
}

/** The task row and its history, to show a refused write changed nothing. */
export async function snapshot(prisma: TestDatabase['db']['prisma'], id: string) {
  const [task, events] = await Promise.all([
    prisma.task.findUnique({ where: { id } }),
    prisma.taskEvent.findMany({ where: { taskId: id }, orderBy: { id: 'asc' } }),
  ]);
  return { task, events };
}

/** Runs `fn` and returns the TaskwardenError code it threw (or 'OK'). */
export async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'OK';
  } catch (error) {
    return (error as { code?: string }).code ?? `UNEXPECTED: ${(error as Error).message}`;
  }
}

export const allStatuses = Object.values(TaskStatus);

export type TaskHarness = ReturnType<typeof taskHarness>;

/** The describe's own task harness over `database` (see taskHarness), made before its first test. */
export function useTaskHarness(
  database: TestDatabase,
  ...settings: Parameters<typeof taskHarness> extends [TestDatabase, ...infer S] ? S : never
): TaskHarness {
  return beforeAllValue('the task harness', () => taskHarness(database, ...settings));
}
