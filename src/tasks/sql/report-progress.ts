import { Prisma } from '../../generated/prisma/client.js';
import type { RawQuery } from '../../db/open.js';
import type { Db, Task, TaskEvent, TaskStatus } from '../model.js';
import { TaskEventType } from '../model.js';
import type { EventPosition } from '../position.js';
import { chainPreceding, parsePreceding, precedingEntry } from './event-log.js';

/** One worker report: a heartbeat, with progress and/or message when given (already validated). */
export interface ProgressRow {
  id: string;
  leaseToken: string;
  progress: number | null;
  message: string | null;
  tokenName: string | null;
}

export type ProgressOutcome =
  | {
      accepted: true;
      task: Task;
      changed: boolean;
      event: TaskEvent | null;
      /** The entry right before `event`, when nothing can come between them (event-log.ts precedingEntry). */
      previous?: EventPosition;
    }
  | { accepted: false; found: boolean; status: TaskStatus | null; leaseHeld: boolean };

const taskColumns = Object.values(Prisma.TaskScalarFieldEnum);

/**
 * Whether a report earns a PROGRESS history entry: it changed progress or
 * message, and either the message changed or the task's last entry is at
 * least `intervalMs` old. Written once, over the new and old values, so the
 * SET and the RETURNING below cannot disagree.
 */
const earnsEntry = (
  now: Date,
  intervalMs: number,
  next: { progress: Prisma.Sql; message: Prisma.Sql },
  old: { progress: string; message: string; recordedAt: string },
) => {
  const [progress, message, recordedAt] = [Prisma.raw(old.progress), Prisma.raw(old.message), Prisma.raw(old.recordedAt)];
  return Prisma.sql`(
  (${next.progress}, ${next.message}) IS DISTINCT FROM (${progress}, ${message})
  AND (${next.message} IS DISTINCT FROM ${message}
       OR ${recordedAt} IS NULL
       OR ${recordedAt} <= ${now}::timestamptz - ${intervalMs}::float8 * interval '1 millisecond'))`;
};

/**
 * Many reports in one statement (one round trip, one commit): each row is
 * fenced by its own lease, exactly as a single report is; a row whose lease
 * does not hold is left as it was. Rows are locked in id order, so two
 * batches (or a batch and a transition) can never deadlock. Returns one
 * outcome per report, in input order. The ids must be distinct.
 */
export async function reportProgress(
  db: Db,
  reports: readonly ProgressRow[],
  now: Date,
  historyIntervalMs: number,
  query?: RawQuery,
): Promise<ProgressOutcome[]> {
  const input = JSON.stringify(reports.map((r, ord) => ({ ord, id: r.id, lease: r.leaseToken, progress: r.progress, message: r.message, token: r.tokenName })));
  const next = { progress: Prisma.sql`COALESCE(r.progress, t.progress)`, message: Prisma.sql`COALESCE(r.message, t.message)` };
  const ids = reports.map((r) => r.id);
  const statement = Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${input}::jsonb) AS r(ord int, id uuid, lease text, progress float8, message text, token text)
    ),
    picked AS MATERIALIZED (
      SELECT t.id, t.status, t.progress, t.message, t."leaseToken", t."progressRecordedAt"
      FROM "Task" t WHERE t.id = ANY(${ids}::uuid[]) ORDER BY t.id FOR UPDATE
    ),
    -- Each report beside the row it was locked with (the old values), joined once.
    src AS MATERIALIZED (
      SELECT r.*, p.status AS old_status, p.progress AS old_progress, p.message AS old_message, p."progressRecordedAt" AS "old_recordedAt"
      FROM input r JOIN picked p ON p.id = r.id
    ),
    changed AS (
      UPDATE "Task" AS t SET
        progress = ${next.progress},
        message = ${next.message},
        "lastHeartbeatAt" = ${now},
        "lastProgressAt" = CASE WHEN (${next.progress}, ${next.message}) IS DISTINCT FROM (t.progress, t.message) THEN ${now} ELSE t."lastProgressAt" END,
        "progressRecordedAt" = CASE WHEN ${earnsEntry(now, historyIntervalMs, next, { progress: 't.progress', message: 't.message', recordedAt: 't."progressRecordedAt"' })} THEN ${now} ELSE t."progressRecordedAt" END
      FROM src r
      WHERE t.id = r.id AND t.status = 'RUNNING' AND t."leaseToken" = r.lease
      RETURNING t.*, r.ord AS "_ord", r.token AS "_token", r.old_status AS "_fromStatus",
        (t.progress, t.message) IS DISTINCT FROM (r.old_progress, r.old_message) AS "_changed",
        ${earnsEntry(now, historyIntervalMs, { progress: Prisma.sql`t.progress`, message: Prisma.sql`t.message` }, { progress: 'r.old_progress', message: 'r.old_message', recordedAt: 'r."old_recordedAt"' })} AS "_record"
    ),
    event AS (
      INSERT INTO "TaskEvent" ("taskId", kind, type, "fromStatus", "toStatus", progress, message, actor, "tokenName", reason, attempt, at)
      SELECT id, kind, 'PROGRESS', "_fromStatus", status, progress, message, COALESCE("workerId", 'worker'), "_token", NULL, attempt, ${now}
      FROM changed WHERE "_record"
      RETURNING id, xact, "taskId", actor
    ),
    -- Once per statement, and only when it appended entries.
    preceding AS (SELECT ${precedingEntry} AS previous WHERE EXISTS (SELECT 1 FROM event))
    SELECT r.ord AS "_input", p.id IS NOT NULL AS "_found", p.status::text AS "_status", p."leaseToken" IS NOT DISTINCT FROM r.lease AS "_leaseHeld",
           c.*, e.id AS "_eventId", e.xact AS "_eventXact", e.actor AS "_eventActor", (SELECT previous FROM preceding) AS "_previous"
    FROM input r
    LEFT JOIN picked p ON p.id = r.id
    LEFT JOIN changed c ON c."_ord" = r.ord
    LEFT JOIN event e ON e."taskId" = c.id
    ORDER BY r.ord`;
  // Straight on the driver when there is one: for a statement of many rows, Prisma's own cost per row dominates.
  const rows = query ? await query(statement.text, statement.values) : await db.$queryRawUnsafe<Record<string, unknown>[]>(statement.text, ...statement.values);
  const bigint = (value: unknown) => (value === null || value === undefined ? null : BigInt(value as string | number | bigint));
  const outcomes = rows.map((row): ProgressOutcome => {
    if (row._ord === null || row._ord === undefined) {
      return { accepted: false, found: row._found as boolean, status: (row._status as TaskStatus | null) ?? null, leaseHeld: row._leaseHeld as boolean };
    }
    const task = Object.fromEntries(taskColumns.map((column) => [column, row[column]])) as unknown as Task;
    const event: TaskEvent | null =
      row._eventId === null || row._eventId === undefined
        ? null
        : {
            id: bigint(row._eventId)!,
            xact: bigint(row._eventXact)!,
            taskId: task.id,
            kind: task.kind,
            type: TaskEventType.PROGRESS,
            fromStatus: row._fromStatus as TaskStatus,
            toStatus: task.status,
            progress: task.progress,
            message: task.message,
            // As the database wrote it: the actor's fallback lives in the INSERT above only.
            actor: row._eventActor as string,
            tokenName: (row._token as string | null) ?? null,
            reason: null,
            attempt: task.attempt,
            at: now,
          };
    return { accepted: true, task, changed: row._changed as boolean, event };
  });
  chainPreceding(
    outcomes.filter((o) => o.accepted),
    parsePreceding(rows[0]?._previous),
  );
  return outcomes;
}
