import { dependencyFailedAlert } from '../alerts/rules.js';
import type { AlertService } from '../alerts/service.js';
import { TaskStatus, type Db } from './model.js';
import { cancelDependants } from './sql/cancel-dependants.js';
import type { RecordedChange } from './sql/record-change.js';
import type { UnitOfWork } from './unit-of-work.js';

/** Whether a change ended its task badly, so that what depends on it can never run. */
export const endsBadly = (change: RecordedChange) =>
  change.event !== null && (change.row.status === TaskStatus.FAILED || change.row.status === TaskStatus.CANCELLED);

/**
 * What follows tasks ending FAILED or CANCELLED, inside the unit of work that
 * ended them: the pending tasks that depend on them, however far down, are
 * cancelled (DEPENDENCY_FAILED, by the scheduler), each with its history
 * entry, its alert and its live event. Every path that ends a task (a
 * worker, an operator, the monitor) runs it, so none leaves a dependant
 * waiting forever.
 */
export async function cancelWhatWaits(
  uow: Pick<UnitOfWork, 'db' | 'changed' | 'alerted'>,
  changes: readonly RecordedChange[],
  alerts: Pick<AlertService, 'record'>,
  now: Date,
): Promise<void> {
  const ended = changes.filter(endsBadly);
  if (ended.length === 0) return;
  const cancelled = await cancelDependants(
    uow.db,
    ended.map((c) => c.row.id),
    now,
  );
  if (cancelled.length === 0) return;
  const causes = await causesOf(uow.db, [...new Set(cancelled.map((c) => c.causeId))]);
  uow.alerted(
    await alerts.record(
      uow.db,
      cancelled.map((c) => dependencyFailedAlert(c.row, causes.get(c.causeId) ?? { id: c.causeId, name: c.causeId, status: 'deleted' }, now)),
    ),
  );
  for (const change of cancelled) uow.changed(change);
}

async function causesOf(db: Db, ids: string[]) {
  const rows = await db.task.findMany({ where: { id: { in: ids } }, select: { id: true, name: true, status: true } });
  return new Map(rows.map((t) => [t.id, t]));
}
