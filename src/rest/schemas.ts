import { z } from '@hono/zod-openapi';
import { stuckActions } from '../tasks/stuck.js';
import type { MonitorStatus } from '../monitor/monitor.js';
import { fixedTasks, type SweepReport } from '../monitor/sweep.js';
import type { MonitorSweep } from '../generated/prisma/client.js';
import type { Services } from '../services.js';
import { TaskStatus, type Task } from '../tasks/model.js';
import type { KindStats, StatusCounts, TaskStats } from '../tasks/stats.js';
import { stuckReasons, type StuckReason, type StuckVerdict } from '../tasks/stuck.js';
import { taskView } from '../tasks/view.js';

/**
 * The JSON the REST API speaks, as the seed's Python platform wrote it:
 * snake_case keys, lower-case statuses, ISO 8601 times. The zod schemas are
 * the OpenAPI document's; the functions below turn the services' values into
 * them and decide nothing themselves.
 */

const lower = <T extends string>(values: readonly T[]) => values.map((v) => v.toLowerCase() as Lowercase<T>) as [Lowercase<T>, ...Lowercase<T>[]];

export const statusValues = lower(Object.values(TaskStatus));
export type RestStatus = (typeof statusValues)[number];
export const toStatus = (status: RestStatus) => status.toUpperCase() as TaskStatus;

const time = z.string().openapi({ format: 'date-time', example: '2026-11-29T23:41:07.512Z' });
const nullableTime = time.nullable();
const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

export const TaskSummary = z
  .object({
    id: z.string().openapi({ format: 'uuid' }),
    name: z.string(),
    kind: z.string().openapi({ example: 'backtest' }),
    status: z.enum(statusValues),
    progress: z.number().openapi({ description: 'From 0 to 100.' }),
    message: z.string().nullable().openapi({ description: 'The current phase, e.g. "saving results".' }),
    attempt: z.number().int(),
    max_attempts: z.number().int(),
    worker_id: z.string().nullable(),
    timeout_minutes: z.number().nullable().openapi({ description: 'Its own run-time limit (overtime past it).' }),
    error: z.string().nullable(),
    created_at: time,
    started_at: nullableTime,
    last_heartbeat_at: nullableTime,
    last_progress_at: nullableTime,
    completed_at: nullableTime,
    duration_seconds: z.number().nullable().openapi({ description: 'Run time of the current (or last) attempt: start to finish, or start to now.' }),
    is_stuck: z.boolean(),
    stuck_reason: z.enum(lower(stuckReasons)).nullable(),
    stuck_since: nullableTime.openapi({ description: 'The last heartbeat (no_heartbeat), the last progress change (no_progress) or the start (overtime).' }),
    stuck_for_seconds: z.number().nullable(),
  })
  .openapi('TaskSummary', { description: 'A task as lists show it (without its params and result).' });

export const TaskDetail = TaskSummary.extend({
  params: z.unknown().openapi({ description: 'The job configuration.' }),
  result: z.unknown().openapi({ description: 'What its worker returned; null until it completed.' }),
}).openapi('Task', { description: 'A task with its params and result.' });

/**
 * A task as the REST API shows it. `verdict` is the stuck verdict the
 * request reached (a stuck query's own timeout); without one, the monitor's.
 */
export function taskSummary(task: Task, verdict: StuckVerdict | null, now: Date): z.infer<typeof TaskSummary> {
  const view = taskView(task, verdict, now);
  return {
    id: task.id,
    name: task.name,
    kind: task.kind,
    status: task.status.toLowerCase() as RestStatus,
    progress: task.progress,
    message: task.message,
    attempt: task.attempt,
    max_attempts: task.maxAttempts,
    worker_id: task.workerId,
    timeout_minutes: task.timeoutMinutes,
    error: task.error,
    created_at: task.createdAt.toISOString(),
    started_at: iso(task.startedAt),
    last_heartbeat_at: iso(task.lastHeartbeatAt),
    last_progress_at: iso(task.lastProgressAt),
    completed_at: iso(task.completedAt),
    duration_seconds: view.durationSeconds,
    is_stuck: view.isStuck,
    stuck_reason: view.stuckReason ? (view.stuckReason.toLowerCase() as Lowercase<StuckReason>) : null,
    stuck_since: iso(view.stuckSince),
    stuck_for_seconds: view.stuckForSeconds,
  };
}

export function taskDetail(task: Task, verdict: StuckVerdict | null, now: Date): z.infer<typeof TaskDetail> {
  return { ...taskSummary(task, verdict, now), params: task.params, result: task.result };
}

/** Tasks as shown now, stuck under the monitor's timeout unless the request reached its own verdict. */
export const presenter = ({ monitor, clock }: Pick<Services, 'monitor' | 'clock'>) => ({
  summary: (task: Task, verdict = monitor.verdict(task)) => taskSummary(task, verdict, clock.now()),
  detail: (task: Task) => taskDetail(task, monitor.verdict(task), clock.now()),
});

export const TaskList = z
  .object({
    total: z.number().int().openapi({ description: 'Tasks that match the filters (the list holds at most `limit` of them).' }),
    tasks: z.array(TaskSummary),
  })
  .openapi('TaskList');

export const StuckList = z
  .object({
    timeout_minutes: z.number(),
    count: z.number().int(),
    tasks: z.array(TaskSummary).openapi({ description: 'Longest stuck first, each with its stuck_reason under this timeout.' }),
  })
  .openapi('StuckList');

export const CleanupReport = z
  .object({
    auto_fix: z.boolean().openapi({ description: 'False: a dry run that changed nothing.' }),
    action: z.enum(stuckActions),
    timeout_minutes: z.number(),
    found: z.array(TaskSummary).openapi({ description: 'Stuck under this timeout, as found.' }),
    fixed: z.array(TaskSummary).openapi({ description: 'Tasks the action changed, as it left them (empty in a dry run).' }),
  })
  .openapi('CleanupReport');

export const Deleted = z.object({ id: z.string().openapi({ format: 'uuid' }), deleted: z.literal(true) }).openapi('Deleted');

const counts = {
  total: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
};
const successRate = z.number().nullable().openapi({ description: 'completed / (completed + failed + cancelled); null before anything finished.' });

const KindStatistics = z.object({ kind: z.string(), ...counts, success_rate: successRate }).openapi('KindStatistics');

const LastSweep = z
  .object({
    started_at: time,
    finished_at: time,
    duration_ms: z.number(),
    trigger: z.string().openapi({ description: 'schedule, manual or cleanup.' }),
    action: z.string(),
    timeout_minutes: z.number().nullable().openapi({ description: "An operator's timeout that replaced every clock; null when the monitor's clocks applied." }),
    scanned: z.number().int(),
    found: z.number().int(),
    fixed: z.number().int(),
  })
  .openapi('LastSweep', { description: 'The newest sweep any instance ran.' });

const MonitorState = z
  .object({
    enabled: z.boolean(),
    running: z.boolean().openapi({ description: "Whether this instance's sweep timer is scheduled." }),
    interval_seconds: z.number(),
    timeout_minutes: z.number().openapi({ description: 'The stall clock (STALL_TIMEOUT); silence is judged by HEARTBEAT_TIMEOUT.' }),
    action: z.enum(stuckActions),
    next_sweep_at: nullableTime,
    consecutive_failures: z.number().int(),
    last_error: z.string().nullable(),
    last_sweep: LastSweep.nullable(),
  })
  .openapi('MonitorState');

export const Statistics = z
  .object({
    since: nullableTime.openapi({ description: 'Counts cover tasks created since then; null: all tasks.' }),
    ...counts,
    stuck: z.number().int().openapi({ description: "Running tasks stuck under the monitor's timeout." }),
    success_rate: successRate,
    average_duration_seconds: z.number().nullable().openapi({ description: 'Mean start-to-finish time of completed tasks.' }),
    oldest_running: TaskSummary.nullable(),
    by_kind: z.array(KindStatistics),
    monitor: MonitorState,
  })
  .openapi('Statistics');

const statusCounts = ({ total, pending, running, completed, failed, cancelled }: StatusCounts) => ({ total, pending, running, completed, failed, cancelled });
const kindStatistics = (k: KindStats) => ({ kind: k.kind, ...statusCounts(k), success_rate: k.successRate });

export function statistics(
  stats: TaskStats,
  monitor: MonitorStatus,
  lastSweep: MonitorSweep | null,
  present: (task: Task) => z.infer<typeof TaskSummary>,
): z.infer<typeof Statistics> {
  return {
    since: iso(stats.since),
    ...statusCounts(stats),
    stuck: stats.stuck,
    success_rate: stats.successRate,
    average_duration_seconds: stats.averageDurationSeconds,
    oldest_running: stats.oldestRunning && present(stats.oldestRunning),
    by_kind: stats.byKind.map(kindStatistics),
    monitor: {
      enabled: monitor.enabled,
      running: monitor.running,
      interval_seconds: monitor.intervalMs / 1000,
      timeout_minutes: monitor.stallTimeoutMs / 60_000,
      action: monitor.action,
      next_sweep_at: iso(monitor.nextSweepAt),
      consecutive_failures: monitor.consecutiveFailures,
      last_error: monitor.lastError,
      last_sweep: lastSweep && {
        started_at: lastSweep.startedAt.toISOString(),
        finished_at: lastSweep.finishedAt.toISOString(),
        duration_ms: lastSweep.finishedAt.getTime() - lastSweep.startedAt.getTime(),
        trigger: lastSweep.trigger,
        action: lastSweep.action,
        timeout_minutes: lastSweep.timeoutMinutes,
        scanned: lastSweep.scanned,
        found: lastSweep.found,
        fixed: lastSweep.fixed,
      },
    },
  };
}

export const cleanupReport = (report: SweepReport, present: ReturnType<typeof presenter>): z.infer<typeof CleanupReport> => ({
  auto_fix: !report.dryRun,
  action: report.action,
  // The REST cleanup always passes its timeout (default 30): the seed's one clock for everything.
  timeout_minutes: (report.rules.overrideMs ?? 0) / 60_000,
  found: report.found.map(({ task, verdict }) => present.summary(task, verdict)),
  fixed: fixedTasks(report).map((task) => present.summary(task)),
});

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'TASK_NOT_TERMINAL' }),
      message: z.string().openapi({ example: 'Task 0b7c… is RUNNING: stop or force-complete it first, then delete it.' }),
      request_id: z.string().optional().openapi({ description: 'Also in the x-request-id header; names the server log lines of this request.' }),
      field: z.string().optional().openapi({ description: 'The parameter at fault (BAD_USER_INPUT).' }),
      status: z.enum(statusValues).optional().openapi({ description: "The task's current status, when a transition was refused." }),
    }),
  })
  .openapi('Error');
export type ErrorBody = z.infer<typeof ErrorBody>;
