import type { Clock } from '../clock.js';
import type { StuckAction } from '../tasks/stuck.js';
import type { EventBus } from '../events.js';
import type { TaskService } from '../tasks/service.js';
import type { AlertService } from '../alerts/service.js';
import { stuckAlert, type AlertDraft } from '../alerts/rules.js';
import { cancelWhatWaits } from '../tasks/cascade.js';
import type { RecordedChange } from '../tasks/sql/record-change.js';
import type { Commit } from '../tasks/unit-of-work.js';
import { resolveStuck } from './resolve-stuck.js';
import { detectionDelayMs, type StuckRules, type StuckTask } from '../tasks/stuck.js';
import { countRunning } from '../tasks/sql/stuck.js';

/** Why a sweep ran: the monitor's timer, `runMonitorSweep`, or an operator's `cleanupStuck`. */
export type SweepTrigger = 'schedule' | 'manual' | 'cleanup';

export interface SweepOptions {
  rules: StuckRules;
  action: StuckAction;
  actor: string;
  /** The API token behind a cleanup (its name); none for the monitor's own sweeps. */
  tokenName?: string | null;
  trigger: SweepTrigger;
  /** Report what is stuck without touching it. */
  dryRun?: boolean;
}

export interface HandledTask extends StuckTask {
  /** What was done; `retry` becomes `fail` when the task has no attempts left. */
  outcome: StuckAction;
}

export interface SweepReport {
  trigger: SweepTrigger;
  action: StuckAction;
  rules: StuckRules;
  dryRun: boolean;
  /** False when another instance held the sweep lock, so this sweep did nothing. */
  ran: boolean;
  startedAt: Date;
  finishedAt: Date;
  /** Running tasks the rule was applied to (in SQL: only the stuck ones among them are read). */
  scanned: number;
  found: StuckTask[];
  /** Tasks acted on, as they were left. With `none`, those reported for a new stuck episode. */
  handled: HandledTask[];
  /** Stuck alerts published: those the outbox took, not ones it already held for the same episode (a cleanup after a `none` report). */
  alerted: number;
}

/** The tasks a sweep's action changed, as it left them (`none` changes nothing). */
export const fixedTasks = (report: Pick<SweepReport, 'handled'>) => report.handled.filter(isFixed).map((h) => h.task);

/** A task counts as fixed when the action changed it: `none` only reports. */
const isFixed = (handled: { outcome: StuckAction }) => handled.outcome !== 'none';

export interface SweepDeps {
  /** The unit of work a sweep runs in (see tasks/unit-of-work.ts). */
  commit: Commit;
  tasks: Pick<TaskService, 'stuckAt' | 'retryBackoff'>;
  clock: Clock;
  bus: EventBus;
  alerts: Pick<AlertService, 'record' | 'pendingTooLong'>;
}

// One advisory lock key for "the sweeper": only one instance sweeps at a time.
// It is a transaction lock, so a crashed sweeper can never leave it held.
export const SWEEP_LOCK = 0x7a5c_5eed;
// Sweep records are kept a week: enough to see how the monitor has been doing.
const SWEEP_HISTORY_MS = 7 * 24 * 3600_000;

/**
 * Finds running tasks that are stuck and applies the action to each, in one
 * transaction holding the sweep lock. Scheduled sweeps skip when another
 * instance holds the lock; manual ones and cleanups wait for it. Alerts and
 * changes are published after the commit, so nobody hears of a change that
 * was rolled back.
 */
export async function sweep({ commit, tasks, clock, bus, alerts }: SweepDeps, options: SweepOptions): Promise<SweepReport> {
  const startedAt = clock.now();
  const dryRun = options.dryRun ?? false;
  const outcome = await commit(
    async (uow) => {
      const { db, changed, alerted, afterCommit } = uow;
      if (options.trigger === 'schedule') {
        const [row] = await db.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${SWEEP_LOCK}) AS locked`;
        if (!row?.locked) return undefined;
      } else {
        await db.$queryRaw`SELECT pg_advisory_xact_lock(${SWEEP_LOCK})::text`;
      }
      // The record starts when the lock is held, not when the sweep asked for it (a wait for a pooled
      // connection or for the lock would make two sweeps' records overlap): so the records show that
      // one instance swept at a time.
      const lockedAt = clock.now();
      // Only the stuck rows are read (the rule runs in SQL); the running ones are counted.
      const now = clock.now();
      const found = await tasks.stuckAt(db, now, options.rules);
      const scanned = await countRunning(db);
      const handled: (HandledTask & { change: RecordedChange; alert: AlertDraft })[] = [];
      if (!dryRun) {
        for (const stuck of found) {
          const resolution = await resolveStuck(db, stuck, options.action, { actor: options.actor, tokenName: options.tokenName }, now, tasks.retryBackoff);
          if (!resolution) continue;
          const { change, outcome } = resolution;
          const task = change.row;
          handled.push({ task, verdict: stuck.verdict, outcome, change, alert: stuckAlert(task, stuck.verdict, outcome, options.actor, now) });
        }
      }
      // The alerts go into the outbox in this same transaction; the subscription hears exactly those (deduplicated by key).
      const recorded = await alerts.record(
        db,
        handled.map((h) => h.alert),
      );
      const published = new Set(recorded.map((r) => r.key));
      if (options.trigger !== 'cleanup') recorded.push(...(await alerts.pendingTooLong(db)));
      alerted(recorded);
      let detectedAt: Date | undefined;
      for (const { change, verdict, outcome: actionTaken, alert } of handled) {
        changed(change);
        if (!published.has(alert.key)) continue;
        afterCommit(() =>
          bus.publish('task:stuck', {
            task: change.row,
            reason: verdict.reason,
            stuckSince: verdict.since,
            stuckForSeconds: verdict.stuckForMs / 1000,
            detectedAt: (detectedAt ??= clock.now()),
            actionTaken,
            actor: options.actor,
          }),
        );
      }
      // A task the sweep cancelled or failed takes down what depends on it, in this transaction.
      await cancelWhatWaits(
        uow,
        handled.map((h) => h.change),
        alerts,
        now,
      );
      if (options.trigger !== 'cleanup') {
        await db.monitorSweep.deleteMany({ where: { startedAt: { lt: new Date(startedAt.getTime() - SWEEP_HISTORY_MS) } } });
        await db.monitorSweep.create({
          data: {
            startedAt: lockedAt,
            finishedAt: clock.now(),
            trigger: options.trigger,
            action: options.action,
            timeoutMinutes: options.rules.overrideMs === undefined ? null : options.rules.overrideMs / 60_000,
            detectionDelaySeconds: handled.length ? Math.max(...handled.map((h) => detectionDelayMs(h.verdict))) / 1000 : null,
            scanned,
            found: found.length,
            fixed: handled.filter(isFixed).length,
          },
        });
      }
      return { scanned, found, handled, alerted: handled.filter((h) => published.has(h.alert.key)).length };
    },
    // A sweep over many running tasks may take a while; the default 5 s would abort it.
    { timeout: 120_000, maxWait: 30_000 },
  );

  return {
    trigger: options.trigger,
    action: options.action,
    rules: options.rules,
    dryRun,
    ran: outcome !== undefined,
    startedAt,
    finishedAt: clock.now(),
    scanned: outcome?.scanned ?? 0,
    found: outcome?.found ?? [],
    handled: (outcome?.handled ?? []).map(({ change: _change, alert: _alert, ...handled }) => handled),
    alerted: outcome?.alerted ?? 0,
  };
}
