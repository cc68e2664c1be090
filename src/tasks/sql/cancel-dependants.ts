import { TaskEventType, type Db, type Task, type TaskEvent } from '../model.js';
import type { RecordedChange } from './record-change.js';

/** Recorded as the reason of a cancellation that a failed dependency caused. */
export const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';
/** The actor of the scheduler's own changes (a worker may not take the name: see validate.ts). */
export const schedulerActor = 'scheduler';

type CancelledRow = Task & { causeId: string; eventId: bigint; eventXact: bigint };

/**
 * Cancels every pending task that depends, directly or further down, on one
 * of these tasks (which just ended FAILED or CANCELLED), in one statement with
 * their history entries. Run it in the transaction of that ending: the task's
 * dependants are locked out of a claim by then (they wait for it), and a
 * dependant being created waits for the ending's lock (see lockDependencies).
 * Each change names its root cause (`causeId`).
 */
export async function cancelDependants(db: Db, endedIds: readonly string[], now: Date): Promise<(RecordedChange & { causeId: string })[]> {
  if (endedIds.length === 0) return [];
  const rows = await db.$queryRaw<CancelledRow[]>`
    WITH RECURSIVE doomed(id, cause) AS (
      SELECT d."taskId", d."dependsOnId" FROM "TaskDependency" d WHERE d."dependsOnId" = ANY(${[...endedIds]}::uuid[])
      UNION
      SELECT d."taskId", doomed.cause FROM "TaskDependency" d JOIN doomed ON d."dependsOnId" = doomed.id
    ),
    picked AS MATERIALIZED (
      SELECT t.id, t.status, (SELECT min(cause::text) FROM doomed WHERE doomed.id = t.id) AS cause
      FROM "Task" t WHERE t.id IN (SELECT id FROM doomed) AND t.status = 'PENDING'
      ORDER BY t.id FOR UPDATE
    ),
    changed AS (
      UPDATE "Task" AS t SET status = 'CANCELLED', "completedAt" = ${now}, "leaseToken" = NULL
      FROM picked WHERE t.id = picked.id AND t.status = 'PENDING'
      RETURNING t.*, picked.cause AS "causeId"
    ),
    event AS (
      INSERT INTO "TaskEvent" ("taskId", kind, type, "fromStatus", "toStatus", progress, message, actor, reason, attempt, at)
      SELECT id, kind, ${TaskEventType.CANCELLED}::"TaskEventType", 'PENDING', status, progress, message, ${schedulerActor}, ${DEPENDENCY_FAILED}, attempt, ${now}
      FROM changed ORDER BY id
      RETURNING id, xact, "taskId"
    )
    SELECT changed.*, event.id AS "eventId", event.xact AS "eventXact" FROM changed JOIN event ON event."taskId" = changed.id ORDER BY event.id`;
  return rows.map(({ causeId, eventId, eventXact, ...row }) => ({
    causeId,
    row,
    event: {
      id: eventId,
      xact: eventXact,
      taskId: row.id,
      kind: row.kind,
      type: TaskEventType.CANCELLED,
      fromStatus: 'PENDING',
      toStatus: row.status,
      progress: row.progress,
      message: row.message,
      actor: schedulerActor,
      tokenName: null,
      reason: DEPENDENCY_FAILED,
      attempt: row.attempt,
      at: now,
    } satisfies TaskEvent,
  }));
}
