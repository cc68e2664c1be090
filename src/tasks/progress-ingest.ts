import type { Clock } from '../clock.js';
import { TaskwardenError } from '../errors.js';
import type { RawQuery } from '../db/open.js';
import type { EventBus } from '../events.js';
import { TaskStatus, type Task } from './model.js';
import { reportProgress, type ProgressOutcome, type ProgressRow } from './sql/report-progress.js';
import { taskNotFound } from './queries.js';
import type { Commit } from './unit-of-work.js';

/** At most this many reports go in one statement (and one reportProgressBatch). */
export const MAX_BATCH = 1000;

export type ReportResult = { accepted: true; task: Task } | { accepted: false; error: TaskwardenError };

export interface ProgressIngestOptions {
  /** Each flush is a unit of work: what it accepted is announced after its commit. */
  commit: Commit;
  /** Where reports the history did not keep are announced (`task:progressed`), for live streams. */
  bus: EventBus;
  /** The driver itself, when the database has one the hot statement may use (PostgreSQL). */
  query?: RawQuery;
  clock: Clock;
  /** One PROGRESS history entry per task at most this often (a change of message is always recorded). */
  historyIntervalMs: number;
}

export type ProgressIngest = ReturnType<typeof createProgressIngest>;

interface Waiting {
  row: ProgressRow;
  resolve(result: ReportResult): void;
  reject(error: unknown): void;
}

/**
 * Group commit for heartbeats and progress reports. A report that arrives
 * while no write is in flight is written at once, alone; reports that arrive
 * while one is in flight wait for it and then go together, as one multi-row
 * statement (sql/report-progress.ts). No timer: the batch is whatever queued
 * during the previous write. Each caller's promise settles only after the
 * statement committed, so an acknowledged report survives a crash; a refused
 * row answers its own caller (LEASE_MISMATCH, NOT_FOUND) and nobody hears of
 * it. Transitions (start, complete, fail, stop, force) never come here.
 */
export function createProgressIngest({ commit, bus, query, clock, historyIntervalMs }: ProgressIngestOptions) {
  let queue: Waiting[] = [];
  let flushing: Promise<void> | undefined;

  const drain = async () => {
    while (queue.length > 0) {
      // A task appears once per statement (its row can be updated once); a second report of the same task waits for the next.
      const batch: Waiting[] = [];
      const later: Waiting[] = [];
      const ids = new Set<string>();
      for (const waiting of queue) {
        if (batch.length < MAX_BATCH && !ids.has(waiting.row.id)) {
          ids.add(waiting.row.id);
          batch.push(waiting);
        } else later.push(waiting);
      }
      queue = later;
      await flush(batch);
    }
  };

  async function flush(batch: Waiting[]) {
    let outcomes: ProgressOutcome[];
    try {
      // One statement is its own transaction: the callers hear back, and subscribers hear of it, only after it committed.
      outcomes = await commit(
        async ({ db, changed, afterCommit }) => {
          const now = clock.now();
          const written = await reportProgress(
            db,
            batch.map((w) => w.row),
            now,
            historyIntervalMs,
            query,
          );
          written.forEach((outcome, i) => {
            if (!outcome.accepted) return; // refused: nobody but its caller hears of it
            if (outcome.event) changed({ row: outcome.task, event: outcome.event, previous: outcome.previous });
            else if (outcome.changed) {
              const report = { task: outcome.task, tokenName: batch[i]!.row.tokenName, at: now };
              afterCommit(() => bus.publish('task:progressed', report));
            }
          });
          return written;
        },
        { transaction: false },
      );
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => {
      const { row, resolve } = batch[i]!;
      resolve(outcome.accepted ? { accepted: true, task: outcome.task } : { accepted: false, error: refusal(row.id, outcome) });
    });
  }

  function enqueue(rows: readonly ProgressRow[]): Promise<ReportResult>[] {
    const results = rows.map((row) => new Promise<ReportResult>((resolve, reject) => queue.push({ row, resolve, reject })));
    flushing ??= drain().finally(() => (flushing = undefined));
    return results;
  }

  return {
    /** One report; resolves with the task as written once it committed, or throws why it was refused. */
    async report(row: ProgressRow): Promise<Task> {
      const result = await enqueue([row])[0]!;
      if (!result.accepted) throw result.error;
      return result.task;
    },
    /** Many reports, in input order; each accepted or refused on its own lease. They go in the same write when they fit. */
    reportMany(rows: readonly ProgressRow[]): Promise<ReportResult[]> {
      return Promise.all(enqueue(rows));
    },
    /** Resolves once nothing is queued or in flight (shutdown). */
    async idle(): Promise<void> {
      while (flushing) await flushing;
    },
  };
}

function refusal(id: string, outcome: Extract<ProgressOutcome, { accepted: false }>): TaskwardenError {
  if (!outcome.found) return taskNotFound(id);
  if (!outcome.leaseHeld) return leaseMismatch(id, outcome.status!);
  return new TaskwardenError('INVALID_TRANSITION', `Cannot report progress on task ${id}: it is ${outcome.status}.`, { status: outcome.status });
}

/** A worker write refused because its lease no longer holds the task: what every such refusal says. */
export function leaseMismatch(id: string, status: TaskStatus): TaskwardenError {
  const why =
    status === TaskStatus.RUNNING
      ? 'another lease holds it (it was claimed again, or this token is wrong)'
      : `it is ${status} now (stopped, force-completed, finished or requeued elsewhere)`;
  return new TaskwardenError('LEASE_MISMATCH', `This lease no longer holds task ${id}: ${why}. Nothing was written; stop working on it.`, { status });
}
