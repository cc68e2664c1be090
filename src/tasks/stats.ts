import type { Clock } from '../clock.js';
import { Prisma } from '../generated/prisma/client.js';
import { TaskStatus, type Db, type Task } from './model.js';
import { findStuck, type StuckRules } from './stuck.js';

export interface StatusCounts {
  total: number;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface KindStats extends StatusCounts {
  kind: string;
  /** completed / (completed + failed + cancelled); null before anything finished. */
  successRate: number | null;
}

export interface TaskStats extends StatusCounts {
  since: Date | null;
  /** Running tasks stuck under the monitor's timeout. */
  stuck: number;
  successRate: number | null;
  /** Mean run time (start to finish) of completed tasks, in seconds. */
  averageDurationSeconds: number | null;
  oldestRunning: Task | null;
  byKind: KindStats[];
}

export interface OutcomeBucket {
  start: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

export type StatsService = ReturnType<typeof createStatsService>;

/** `rules`: the clocks stuck tasks are counted by (the monitor's, with its grace). */
export function createStatsService({ prisma, clock, rules }: { prisma: Db; clock: Clock; rules: () => StuckRules }) {
  return {
    /** Counts over tasks created since `since` (all tasks when absent). */
    async taskStats(since?: Date | null): Promise<TaskStats> {
      const created = since ? { createdAt: { gte: since } } : {};
      const [groups, duration, running] = await Promise.all([
        prisma.task.groupBy({ by: ['kind', 'status'], where: created, _count: { _all: true } }),
        prisma.$queryRaw<{ seconds: number | null }[]>`
          SELECT AVG(EXTRACT(EPOCH FROM ("completedAt" - "startedAt")))::float8 AS seconds
          FROM "Task" WHERE status = 'COMPLETED' ${since ? Prisma.sql`AND "createdAt" >= ${since}` : Prisma.empty}`,
        prisma.task.findMany({ where: { status: TaskStatus.RUNNING, ...created }, orderBy: { startedAt: 'asc' } }),
      ]);
      const byKind = new Map<string, KindStats>();
      const all = emptyCounts();
      for (const group of groups) {
        const kind = byKind.get(group.kind) ?? { kind: group.kind, ...emptyCounts(), successRate: null };
        byKind.set(group.kind, kind);
        for (const counts of [kind, all]) add(counts, group.status, group._count._all);
      }
      for (const kind of byKind.values()) kind.successRate = successRate(kind);
      return {
        since: since ?? null,
        ...all,
        stuck: findStuck(running, clock.now(), rules()).length,
        successRate: successRate(all),
        averageDurationSeconds: duration[0]?.seconds ?? null,
        oldestRunning: running[0] ?? null,
        byKind: [...byKind.values()].sort((a, b) => b.total - a.total || a.kind.localeCompare(b.kind)),
      };
    },

    /** Finished tasks per time bucket (by completedAt), oldest first, for charts. */
    async outcomes(since: Date, bucketSeconds: number): Promise<OutcomeBucket[]> {
      const rows = await prisma.$queryRaw<{ bucket: number; status: TaskStatus; count: number }[]>`
        SELECT floor(EXTRACT(EPOCH FROM ("completedAt" - ${since}::timestamptz)) / ${bucketSeconds})::int AS bucket,
               status::text AS status, count(*)::int AS count
        FROM "Task"
        WHERE "completedAt" >= ${since}
        GROUP BY 1, 2`;
      const buckets = Math.max(1, Math.ceil((clock.now().getTime() - since.getTime()) / (bucketSeconds * 1000)));
      const result: OutcomeBucket[] = Array.from({ length: buckets }, (_, i) => ({
        start: new Date(since.getTime() + i * bucketSeconds * 1000),
        completed: 0,
        failed: 0,
        cancelled: 0,
      }));
      for (const row of rows) {
        const bucket = result[Math.min(row.bucket, buckets - 1)];
        if (!bucket) continue;
        if (row.status === TaskStatus.COMPLETED) bucket.completed += row.count;
        else if (row.status === TaskStatus.FAILED) bucket.failed += row.count;
        else if (row.status === TaskStatus.CANCELLED) bucket.cancelled += row.count;
      }
      return result;
    },
  };
}

function emptyCounts(): StatusCounts {
  return { total: 0, pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

function add(counts: StatusCounts, status: TaskStatus, n: number) {
  counts.total += n;
  counts[status.toLowerCase() as Exclude<keyof StatusCounts, 'total'>] += n;
}

function successRate(counts: StatusCounts): number | null {
  const finished = counts.completed + counts.failed + counts.cancelled;
  return finished === 0 ? null : counts.completed / finished;
}
