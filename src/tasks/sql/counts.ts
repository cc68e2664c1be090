import { Prisma } from '../../generated/prisma/client.js';
import type { Db, TaskStatus } from '../model.js';

export interface CountRow {
  kind: string;
  status: TaskStatus;
  n: number;
  /** Summed run time of the COMPLETED tasks counted, in seconds. */
  seconds: number;
  /** How many of those had a start and an end. */
  timed: number;
}

/**
 * Task counts by kind and status, exact: the sums of the "TaskCount" rows that the trigger on "Task"
 * appends in the same statement as each insert, delete and status change (see the migration
 * 20261130023437_task_counts_search). Its cost follows the number of kinds and of transitions since
 * the last fold, not the number of tasks.
 */
export async function readCounts(db: Db, filter: { kind?: string; statuses?: readonly TaskStatus[] } = {}): Promise<CountRow[]> {
  return db.$queryRaw<CountRow[]>`
    SELECT kind, status, sum(n)::int AS n, sum(seconds)::float8 AS seconds, sum(timed)::int AS timed
    FROM "TaskCount"
    WHERE true
      ${filter.kind !== undefined ? Prisma.sql`AND kind = ${filter.kind}` : Prisma.empty}
      ${filter.statuses?.length ? Prisma.sql`AND status::text = ANY(${filter.statuses})` : Prisma.empty}
    GROUP BY kind, status
    HAVING sum(n) <> 0`;
}

/**
 * Folds the appended +1/-1 rows into one row per kind and status, in one statement: the rows it
 * deletes are exactly the ones it sums back, and rows appended meanwhile (not in its snapshot) are
 * left for the next fold, so the sums never change. Safe to run from several instances at once.
 * Returns how many rows it folded.
 */
export async function foldCounts(db: Db): Promise<number> {
  const [row] = await db.$queryRaw<{ folded: number }[]>`
    WITH gone AS (DELETE FROM "TaskCount" RETURNING kind, status, n, seconds, timed),
    kept AS (
      INSERT INTO "TaskCount" (kind, status, n, seconds, timed)
      SELECT kind, status, sum(n), sum(seconds), sum(timed) FROM gone
      GROUP BY kind, status
      HAVING sum(n) <> 0 OR sum(timed) <> 0
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone)::int - (SELECT count(*) FROM kept)::int AS folded`;
  return row?.folded ?? 0;
}
