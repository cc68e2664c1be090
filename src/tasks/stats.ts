import type { Clock } from '../clock.js';
import { TaskStatus, type Db, type Task } from './model.js';
import type { StuckRules } from './stuck.js';
import { readCounts, type CountRow } from './sql/counts.js';
import { countStuck } from './sql/stuck.js';

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
    /**
     * Counts over all tasks, from the counters (exact, and as fast at a million tasks as at ten);
     * or over tasks created since `since`, counted from the rows of that window (its cost follows
     * the window's size). Averages and rates come from the same counts.
     */
    async taskStats(since?: Date | null): Promise<TaskStats> {
      const now = clock.now();
      const [groups, stuck, oldestRunning] = await Promise.all([
        since ? windowCounts(prisma, since) : readCounts(prisma),
        countStuck(prisma, rules(), now, since),
        prisma.task.findFirst({ where: { status: TaskStatus.RUNNING, ...(since ? { createdAt: { gte: since } } : {}) }, orderBy: { startedAt: 'asc' } }),
      ]);
      const byKind = new Map<string, KindStats>();
      const all = emptyCounts();
      let seconds = 0;
      let timed = 0;
      for (const group of groups) {
        const kind = byKind.get(group.kind) ?? { kind: group.kind, ...emptyCounts(), successRate: null };
        byKind.set(group.kind, kind);
        for (const counts of [kind, all]) add(counts, group.status, group.n);
        seconds += group.seconds;
        timed += group.timed;
      }
      for (const kind of byKind.values()) kind.successRate = successRate(kind);
      return {
        since: since ?? null,
        ...all,
        stuck,
        successRate: successRate(all),
        averageDurationSeconds: timed > 0 ? seconds / timed : null,
        oldestRunning,
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

/** The counts of tasks created since `since`, in the counters' shape. */
function windowCounts(prisma: Db, since: Date): Promise<CountRow[]> {
  return prisma.$queryRaw<CountRow[]>`
    SELECT kind, status, count(*)::int AS n,
           COALESCE(sum(EXTRACT(EPOCH FROM "completedAt" - "startedAt")::float8) FILTER (WHERE status = 'COMPLETED'), 0)::float8 AS seconds,
           (count(*) FILTER (WHERE status = 'COMPLETED' AND "completedAt" IS NOT NULL AND "startedAt" IS NOT NULL))::int AS timed
    FROM "Task" WHERE "createdAt" >= ${since}
    GROUP BY kind, status`;
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
