import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { terminalStatuses } from '../tasks/lifecycle.js';
import type { Db } from '../tasks/model.js';
import { foldCounts } from '../tasks/sql/counts.js';

export interface RetentionSettings {
  /** Finished tasks whose end is older than this are deleted with their history; null: kept forever (the default). */
  taskRetentionMs: number | null;
  /**
   * PROGRESS entries older than this are pruned, and so is the history of a deleted task once its
   * deletion is this old; null: history kept forever. Transitions of a task that exists always stay.
   */
  historyRetentionMs: number | null;
}

export interface PruneCounts {
  /** Finished tasks deleted (TASK_RETENTION). */
  tasks: number;
  /** History entries deleted: those of the deleted tasks, old PROGRESS entries, and old histories of deleted tasks. */
  events: number;
}

export interface PruneReport extends PruneCounts {
  dryRun: boolean;
  /** Whether rows older than the settings may remain (the round stopped at its batch budget). */
  more: boolean;
}

/** Rows per statement: small enough that no batch holds its locks for long, or blocks a transition noticeably. */
export const PRUNE_BATCH = 500;

/**
 * One batch of each kind of pruning, each its own short statement (and transaction): the monitor
 * runs a few per tick, `taskwarden prune` runs them until nothing is left.
 */
const batches = {
  /** Finished tasks past TASK_RETENTION, with all their history. A running or pending task never matches. */
  async tasks(db: Db, cutoff: Date, limit: number): Promise<PruneCounts> {
    // createdAt <= completedAt, so the (status, createdAt) index narrows the candidates.
    const [row] = await db.$queryRaw<PruneCounts[]>`
      WITH doomed AS MATERIALIZED (
        SELECT id FROM "Task"
        WHERE status::text = ANY(${[...terminalStatuses]}) AND "createdAt" < ${cutoff} AND "completedAt" < ${cutoff}
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      ),
      events AS (DELETE FROM "TaskEvent" WHERE "taskId" IN (SELECT id FROM doomed) RETURNING 1),
      tasks AS (DELETE FROM "Task" WHERE id IN (SELECT id FROM doomed) AND status::text = ANY(${[...terminalStatuses]}) RETURNING 1)
      SELECT (SELECT count(*) FROM tasks)::int AS tasks, (SELECT count(*) FROM events)::int AS events`;
    return row!;
  },
  /** PROGRESS entries past HISTORY_RETENTION (transitions stay while their task exists). */
  async progress(db: Db, cutoff: Date, limit: number): Promise<PruneCounts> {
    const [row] = await db.$queryRaw<{ events: number }[]>`
      WITH doomed AS (SELECT id FROM "TaskEvent" WHERE type = 'PROGRESS' AND at < ${cutoff} LIMIT ${limit}),
      gone AS (DELETE FROM "TaskEvent" WHERE id IN (SELECT id FROM doomed) RETURNING 1)
      SELECT count(*)::int AS events FROM gone`;
    return { tasks: 0, events: row!.events };
  },
  /** The history of tasks deleted more than HISTORY_RETENTION ago, their DELETED entry last. */
  async deletedHistory(db: Db, cutoff: Date, limit: number): Promise<PruneCounts> {
    const [row] = await db.$queryRaw<{ events: number }[]>`
      WITH doomed AS (
        SELECT DISTINCT "taskId" FROM "TaskEvent" e
        WHERE type = 'DELETED' AND at < ${cutoff} AND NOT EXISTS (SELECT 1 FROM "Task" t WHERE t.id = e."taskId")
        LIMIT ${Math.max(1, Math.floor(limit / 20))}
      ),
      gone AS (DELETE FROM "TaskEvent" WHERE "taskId" IN (SELECT "taskId" FROM doomed) RETURNING 1)
      SELECT count(*)::int AS events FROM gone`;
    return { tasks: 0, events: row!.events };
  },
};

/** What pruning would delete now: the counts `taskwarden prune --dry-run` shows. */
async function countDue(db: Db, settings: RetentionSettings, now: Date): Promise<PruneCounts> {
  const taskCutoff = settings.taskRetentionMs === null ? null : new Date(now.getTime() - settings.taskRetentionMs);
  const historyCutoff = settings.historyRetentionMs === null ? null : new Date(now.getTime() - settings.historyRetentionMs);
  const [row] = await db.$queryRaw<PruneCounts[]>`
    WITH doomed AS (
      SELECT id FROM "Task"
      WHERE ${taskCutoff}::timestamptz IS NOT NULL AND status::text = ANY(${[...terminalStatuses]})
        AND "createdAt" < ${taskCutoff}::timestamptz AND "completedAt" < ${taskCutoff}::timestamptz
    ),
    deleted AS (
      SELECT DISTINCT "taskId" FROM "TaskEvent" e
      WHERE ${historyCutoff}::timestamptz IS NOT NULL AND type = 'DELETED' AND at < ${historyCutoff}::timestamptz
        AND NOT EXISTS (SELECT 1 FROM "Task" t WHERE t.id = e."taskId")
    )
    SELECT (SELECT count(*) FROM doomed)::int AS tasks,
      ((SELECT count(*) FROM "TaskEvent" WHERE "taskId" IN (SELECT id FROM doomed))
       + (SELECT count(*) FROM "TaskEvent" e WHERE ${historyCutoff}::timestamptz IS NOT NULL AND type = 'PROGRESS' AND at < ${historyCutoff}::timestamptz
            AND e."taskId" NOT IN (SELECT id FROM doomed))
       + (SELECT count(*) FROM "TaskEvent" e WHERE e."taskId" IN (SELECT "taskId" FROM deleted)))::int AS events`;
  return row!;
}

/**
 * Applies the retention settings: batches of at most PRUNE_BATCH rows, each in its own short
 * statement, until nothing is due or `maxBatches` were run. With `dryRun`, only counts what is due.
 */
export async function prune(
  db: Db,
  settings: RetentionSettings,
  now: Date,
  options: { dryRun?: boolean; maxBatches?: number; batchSize?: number } = {},
): Promise<PruneReport> {
  if (options.dryRun) return { ...(await countDue(db, settings, now)), dryRun: true, more: false };
  const batchSize = options.batchSize ?? PRUNE_BATCH;
  let budget = options.maxBatches ?? Infinity;
  const total: PruneCounts = { tasks: 0, events: 0 };
  const jobs: ((limit: number) => Promise<PruneCounts>)[] = [];
  if (settings.taskRetentionMs !== null) {
    const cutoff = new Date(now.getTime() - settings.taskRetentionMs);
    jobs.push((limit) => batches.tasks(db, cutoff, limit));
  }
  if (settings.historyRetentionMs !== null) {
    const cutoff = new Date(now.getTime() - settings.historyRetentionMs);
    jobs.push(
      (limit) => batches.progress(db, cutoff, limit),
      (limit) => batches.deletedHistory(db, cutoff, limit),
    );
  }
  let more = false;
  for (const job of jobs) {
    for (;;) {
      if (budget <= 0) {
        more = true;
        break;
      }
      budget -= 1;
      const done = await job(batchSize);
      total.tasks += done.tasks;
      total.events += done.events;
      if (done.tasks + done.events === 0) break;
    }
  }
  return { ...total, dryRun: false, more };
}

export type Retention = ReturnType<typeof createRetention>;

/**
 * The monitor's upkeep, on its own timer (every MONITOR_INTERVAL, at least every minute): folds the
 * task counters and applies retention a few batches at a time, so a large backlog is worked off over
 * several ticks and never holds locks for long. A failed round is logged and tried again next tick.
 */
export function createRetention(deps: {
  prisma: PrismaClient;
  clock: Clock;
  settings: RetentionSettings;
  intervalMs: number;
  log: Logger;
  onPrune?: (counts: PruneCounts) => void;
  /** Batches per round (default 20, 10,000 rows at most). */
  maxBatches?: number;
}) {
  const { prisma, clock, settings, log } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inFlight: Promise<unknown> = Promise.resolve();

  async function round(): Promise<PruneReport> {
    await foldCounts(prisma);
    const report = await prune(prisma, settings, clock.now(), { maxBatches: deps.maxBatches ?? 20 });
    if (report.tasks + report.events > 0) {
      deps.onPrune?.(report);
      log.info({ tasks: report.tasks, events: report.events, more: report.more }, 'retention pruned old rows');
    }
    return report;
  }

  function runNow(): Promise<PruneReport> {
    const run = inFlight.then(round);
    inFlight = run.catch((error: unknown) => log.error({ err: error }, 'retention round failed; trying again at the next tick'));
    return run;
  }

  function schedule() {
    if (!running) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        runNow()
          .catch(() => {})
          .finally(schedule);
      },
      Math.min(deps.intervalMs, 60_000),
    );
    timer.unref?.();
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
    /** One round now: fold the counters, prune up to the batch budget. */
    runNow,
    settings,
  };
}
