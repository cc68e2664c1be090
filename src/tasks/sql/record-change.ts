import { Prisma } from '../../generated/prisma/client.js';
import type { Change } from './change.js';
import type { Db, Task, TaskEvent, TaskEventType } from '../model.js';
import type { EventPosition } from '../position.js';
import { parsePreceding, precedingEntry } from './event-log.js';

export interface EventSpec {
  type: TaskEventType;
  /** Who made the change; when absent, the worker that held the task. */
  actor?: string;
  /**
   * The API token that made the change (its name), beside the actor: a worker
   * picks its own worker id, so only this says which credential did it. None
   * in open mode and for the monitor or the CLI on the database.
   */
  tokenName?: string | null;
  reason?: string | null;
  at: Date;
}

export interface RecordedChange {
  /** The row as the write left it (for a deletion: as it was). */
  row: Task;
  /** The history entry appended, or null when the write did not earn one (a bare heartbeat). */
  event: TaskEvent | null;
  /** The entry right before `event`, when nothing can come between them (event-log.ts precedingEntry). */
  previous?: EventPosition;
}

const taskColumns = Object.values(Prisma.TaskScalarFieldEnum);
const eventColumns = Object.values(Prisma.TaskEventScalarFieldEnum);

/**
 * The history entry a statement appended (its CTE "event", `RETURNING *`), selected beside the task's
 * columns: the two share column names (kind, progress, message, ...), so the entry's come back as
 * "event.<column>". `recordedChangeOf` reads such a row back.
 */
export const eventFields = Prisma.raw(eventColumns.map((column) => `event."${column}" AS "event.${column}"`).join(', '));

/** The task and the entry as the database wrote them: nothing of the entry (its actor's fallback, its time) is worked out again here. */
export function recordedChangeOf(row: Record<string, unknown>): RecordedChange {
  const pick = <T>(prefix: string, columns: readonly string[]) => Object.fromEntries(columns.map((column) => [column, row[prefix + column]])) as T;
  const event = row['event.id'] == null ? null : pick<TaskEvent>('event.', eventColumns);
  return { row: pick<Task>('', taskColumns), event, previous: parsePreceding(row._previous) };
}

/**
 * The one way Taskwarden writes a task: a single statement that makes the
 * change and appends its TaskEvent, so no write lands without its history (or
 * the other way round), and a racing writer sees both or neither.
 *
 * `change` is an INSERT, UPDATE or DELETE on "Task" (see change.ts)
 * returning the task's columns plus "fromStatus" and "fromWorkerId" (status
 * and worker before the write) and "record" (whether this write earns a
 * history entry). When its
 * compare-and-set guard fails it returns no row, and this returns null.
 */
export async function recordChange(db: Db, change: Change, event: EventSpec, options: { deletes?: boolean } = {}): Promise<RecordedChange | null> {
  const rows = await db.$queryRaw<Record<string, unknown>[]>`
    WITH ${change.pick ? Prisma.sql`picked AS MATERIALIZED (${change.pick}),` : Prisma.empty}
    changed AS (${change.statement}),
    event AS (
      INSERT INTO "TaskEvent" ("taskId", kind, type, "fromStatus", "toStatus", progress, message, actor, "tokenName", reason, attempt, at)
      SELECT id, kind, ${event.type}::"TaskEventType", "fromStatus", ${options.deletes ? Prisma.sql`NULL::"TaskStatus"` : Prisma.sql`status`}, progress, message,
             COALESCE(${event.actor ?? null}, "fromWorkerId", "workerId", 'worker'), ${event.tokenName ?? null}, ${event.reason ?? null}, attempt, ${event.at}
      FROM changed WHERE record
      RETURNING *
    )
    SELECT changed.*, ${eventFields}, CASE WHEN event.id IS NOT NULL THEN ${precedingEntry} END AS "_previous"
    FROM changed LEFT JOIN event ON event."taskId" = changed.id`;
  return rows[0] ? recordedChangeOf(rows[0]) : null;
}
