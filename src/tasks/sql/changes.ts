import { Prisma } from '../../generated/prisma/client.js';
import { terminalStatuses } from '../model.js';

export interface Change {
  /**
   * Locks the row(s) to write, once. It must be a CTE, not a subquery in the
   * write: Postgres may re-scan a subquery per joined row, and a re-scanned
   * `LIMIT 1 FOR UPDATE SKIP LOCKED` would hand out a second task.
   */
  pick?: Prisma.Sql;
  /** The INSERT, UPDATE or DELETE, reading the locked row(s) as "picked". */
  statement: Prisma.Sql;
}

// Building blocks for recordChange: each returns a Change whose statement
// returns the task's columns plus "fromStatus", "fromWorkerId" (the worker
// that held it before the write) and "record". A `pick` runs
// once, as a materialized CTE named "picked", before the write.

/** Locks one task by id; the lock makes racing writers take turns, so exactly one wins. */
export const pickById = (id: string) =>
  Prisma.sql`SELECT id, status, progress, message, "workerId" FROM "Task" WHERE id = ${id}::uuid FOR UPDATE`;

/**
 * Locks the oldest pending task (of the given kinds). SKIP LOCKED lets many
 * workers claim at once without queueing on each other's candidate.
 */
export const pickOldestPending = (kinds: string[] | undefined) => Prisma.sql`
  SELECT id, status, progress, message, "workerId" FROM "Task"
  WHERE status = 'PENDING' ${kinds ? Prisma.sql`AND kind = ANY(${kinds})` : Prisma.empty}
  ORDER BY "createdAt", id
  LIMIT 1
  FOR UPDATE SKIP LOCKED`;

export interface UpdateSpec {
  pick: Prisma.Sql;
  /** The compare-and-set: conditions on the locked row `t` that must hold for the write to happen. */
  guard: Prisma.Sql;
  set: Prisma.Sql;
  /** Whether the write earns a history entry; compares `t` (new values) with `picked` (old ones). */
  record?: Prisma.Sql;
}

export const updateTask = ({ pick, guard, set, record }: UpdateSpec): Change => ({
  pick,
  statement: Prisma.sql`
    UPDATE "Task" AS t SET ${set}
    FROM picked
    WHERE t.id = picked.id AND ${guard}
    RETURNING t.*, picked.status AS "fromStatus", picked."workerId" AS "fromWorkerId", ${record ?? Prisma.sql`true`} AS record`,
});

export const deleteTerminalTask = (id: string): Change => ({
  pick: pickById(id),
  statement: Prisma.sql`
    DELETE FROM "Task" AS t
    USING picked
    WHERE t.id = picked.id AND t.status::text = ANY(${[...terminalStatuses]})
    RETURNING t.*, picked.status AS "fromStatus", picked."workerId" AS "fromWorkerId", true AS record`,
});

export interface NewTask {
  name: string;
  kind: string;
  params: unknown;
  maxAttempts: number;
  timeoutMinutes: number | null;
  heartbeatTimeoutSeconds: number | null;
  stallTimeoutMinutes: number | null;
  createdAt: Date;
}

export const insertTask = (task: NewTask): Change => ({
  statement: Prisma.sql`
    INSERT INTO "Task" (name, kind, params, "maxAttempts", "timeoutMinutes", "heartbeatTimeoutSeconds", "stallTimeoutMinutes", "createdAt")
    VALUES (${task.name}, ${task.kind}, ${JSON.stringify(task.params ?? {})}::jsonb, ${task.maxAttempts}, ${task.timeoutMinutes},
            ${task.heartbeatTimeoutSeconds}, ${task.stallTimeoutMinutes}, ${task.createdAt})
    RETURNING *, NULL::"TaskStatus" AS "fromStatus", NULL::text AS "fromWorkerId", true AS record`,
});
