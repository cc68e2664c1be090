import { Prisma } from '../../generated/prisma/client.js';
import type { Db } from '../model.js';
import { dependenciesDone, due } from './claim.js';

/** One kind's queue, as `queues` and /metrics show it. */
export interface KindQueueFigures {
  kind: string;
  /** Pending and claimable by time and dependencies (a paused or full kind still holds them). */
  pending: number;
  /** Pending, dependencies done, runAt still ahead. */
  delayed: number;
  /** Pending, waiting for a dependency to complete. */
  blocked: number;
  running: number;
  /** At most this many running at once; null: unlimited. */
  maxRunning: number | null;
  paused: boolean;
  /** How long the longest-waiting ready task has been due (0 when none is). */
  oldestReadyAgeSeconds: number;
}

/** As the statement returns it: no age where no task is ready. */
type FigureRow = Omit<KindQueueFigures, 'oldestReadyAgeSeconds'> & { oldestReadyAgeSeconds: number | null };

/**
 * Every kind with pending or running tasks, or with settings, in one
 * statement. It reads the pending and running tasks only (the status index),
 * never the finished ones.
 */
export async function queueFigures(db: Db, now: Date, only?: string): Promise<KindQueueFigures[]> {
  const kindFilter = (column: Prisma.Sql) => (only === undefined ? Prisma.empty : Prisma.sql`AND ${column} = ${only}`);
  const rows = await db.$queryRaw<FigureRow[]>`
    WITH live AS (
      SELECT c.kind, c.status,
             CASE WHEN c.status <> 'PENDING' THEN NULL
                  WHEN NOT ${dependenciesDone(Prisma.raw('c'))} THEN 'blocked'
                  WHEN NOT ${due(Prisma.raw('c'), now)} THEN 'delayed'
                  ELSE 'ready' END AS state,
             COALESCE(c."runAt", c."createdAt") AS "dueAt"
      FROM "Task" c WHERE c.status IN ('PENDING', 'RUNNING') ${kindFilter(Prisma.sql`c.kind`)}
    ),
    counted AS (
      SELECT kind,
             count(*) FILTER (WHERE state = 'ready')::int AS pending,
             count(*) FILTER (WHERE state = 'delayed')::int AS delayed,
             count(*) FILTER (WHERE state = 'blocked')::int AS blocked,
             count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
             min("dueAt") FILTER (WHERE state = 'ready') AS "oldestDue"
      FROM live GROUP BY kind
    ),
    kinds AS (SELECT kind FROM counted UNION SELECT kind FROM "KindQueue" WHERE true ${kindFilter(Prisma.sql`kind`)})
    SELECT kinds.kind,
           COALESCE(counted.pending, 0) AS pending, COALESCE(counted.delayed, 0) AS delayed,
           COALESCE(counted.blocked, 0) AS blocked, COALESCE(counted.running, 0) AS running,
           q."maxRunning", COALESCE(q.paused, false) AS paused,
           GREATEST(0, EXTRACT(EPOCH FROM (${now}::timestamptz - counted."oldestDue")))::float8 AS "oldestReadyAgeSeconds"
    FROM kinds LEFT JOIN counted USING (kind) LEFT JOIN "KindQueue" q USING (kind)
    ORDER BY kinds.kind`;
  return rows.map((row) => ({ ...row, oldestReadyAgeSeconds: row.oldestReadyAgeSeconds ?? 0 }));
}

/** Why one pending task cannot be claimed now, as facts; null fields hold nothing back. */
export interface Holdback {
  unfinishedDependencies: number;
  runAt: Date | null;
  paused: boolean;
  maxRunning: number | null;
  running: number;
}

export async function holdbackOf(db: Db, taskId: string): Promise<Holdback | null> {
  const [row] = await db.$queryRaw<Holdback[]>`
    SELECT
      (SELECT count(*)::int FROM "TaskDependency" d JOIN "Task" p ON p.id = d."dependsOnId" WHERE d."taskId" = t.id AND p.status <> 'COMPLETED') AS "unfinishedDependencies",
      t."runAt",
      COALESCE(q.paused, false) AS paused,
      q."maxRunning",
      (SELECT count(*)::int FROM "Task" r WHERE r.status = 'RUNNING' AND r.kind = t.kind) AS running
    FROM "Task" t LEFT JOIN "KindQueue" q ON q.kind = t.kind
    WHERE t.id = ${taskId}::uuid`;
  return row ?? null;
}
