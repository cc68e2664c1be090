import ms from 'ms';
import { TaskStatus, type Task } from './model.js';

export const stuckActions = ['cancel', 'fail', 'retry', 'none'] as const;
/** What the monitor does with a stuck task. */
export type StuckAction = (typeof stuckActions)[number];

export const stuckReasons = ['NO_HEARTBEAT', 'OVERTIME', 'NO_PROGRESS'] as const;
/**
 * Why a running task counts as stuck:
 * - NO_HEARTBEAT: its worker has been silent (dead, or cut off) for longer than the heartbeat timeout;
 * - OVERTIME: it has run longer than its own `timeoutMinutes`;
 * - NO_PROGRESS: its worker still heartbeats but neither progress nor message changed for longer
 *   than the stall timeout: alive but frozen, such as the seed's "stuck at 90% while saving results".
 */
export type StuckReason = (typeof stuckReasons)[number];

/**
 * The clocks a sweep or a query judges by. A dead worker is silent, so it can be judged in seconds;
 * a phase with no visible progress (a long save, a slow load) needs minutes to an hour.
 */
export interface StuckRules {
  /** Silence longer than this is NO_HEARTBEAT, unless the task has its own `heartbeatTimeoutSeconds`. */
  heartbeatTimeoutMs: number;
  /** No change of progress or message for longer than this is NO_PROGRESS, unless the task has its own `stallTimeoutMinutes`. */
  stallTimeoutMs: number;
  /**
   * An operator's timeout for one call (`stuckTasks(timeoutMinutes:)`, `cleanupStuck`): the seed's
   * "nothing from it, or no progress, for longer than this". It replaces both clocks, the task's own included.
   */
  overrideMs?: number;
  /**
   * Since when this instance could hear workers: its start, or its database back from an outage.
   * Silence before it is not held against a task: heartbeats sent then could not land.
   */
  hearingSince?: Date;
}

/** One timeout for every clock, the tasks' own included: an operator's `--timeout`. */
export function oneTimeout(timeoutMs: number): StuckRules {
  return { heartbeatTimeoutMs: timeoutMs, stallTimeoutMs: timeoutMs, overrideMs: timeoutMs };
}

/** The timeouts that apply to one task under these rules, in milliseconds. */
export function clocksOf(task: Pick<Task, 'heartbeatTimeoutSeconds' | 'stallTimeoutMinutes'>, rules: StuckRules) {
  if (rules.overrideMs !== undefined) return { heartbeatMs: rules.overrideMs, stallMs: rules.overrideMs };
  return {
    heartbeatMs: task.heartbeatTimeoutSeconds != null ? task.heartbeatTimeoutSeconds * 1000 : rules.heartbeatTimeoutMs,
    stallMs: task.stallTimeoutMinutes != null ? task.stallTimeoutMinutes * 60_000 : rules.stallTimeoutMs,
  };
}

/** How often a worker should heartbeat: a third of its heartbeat timeout, so one late or lost beat is no alarm. */
export function heartbeatIntervalMs(task: Pick<Task, 'heartbeatTimeoutSeconds' | 'stallTimeoutMinutes'>, rules: StuckRules): number {
  return clocksOf(task, { ...rules, overrideMs: undefined }).heartbeatMs / 3;
}

export interface StuckVerdict {
  reason: StuckReason;
  /** The last sign of what is missing: the last heartbeat, the last progress change, or the start (OVERTIME). */
  since: Date;
  stuckForMs: number;
  /** When the rule first held: `since` plus the timeout (later after a grace). Detection minus this is the monitor's delay. */
  dueAt: Date;
  /**
   * Names this stuck episode: the same attempt, reason and last sign of life.
   * A task that recovers and freezes again starts a new episode.
   */
  episode: string;
}

/** How late it was found: the moment of the verdict minus the moment the task became stuck. */
export function detectionDelayMs(verdict: StuckVerdict): number {
  return verdict.since.getTime() + verdict.stuckForMs - verdict.dueAt.getTime();
}

export type StuckInput = Pick<
  Task,
  'status' | 'attempt' | 'startedAt' | 'lastHeartbeatAt' | 'lastProgressAt' | 'timeoutMinutes' | 'heartbeatTimeoutSeconds' | 'stallTimeoutMinutes'
>;

/** The one place that decides whether a task is stuck. Checked in order: a dead worker first. */
export function detectStuck(task: StuckInput, now: Date, rules: StuckRules): StuckVerdict | null {
  if (task.status !== TaskStatus.RUNNING || !task.startedAt) return null;
  const at = now.getTime();
  const { heartbeatMs, stallMs } = clocksOf(task, rules);
  const verdict = (reason: StuckReason, since: Date, dueAt: number): StuckVerdict => ({
    reason,
    since,
    stuckForMs: at - since.getTime(),
    dueAt: new Date(dueAt),
    episode: `${task.attempt}:${reason}:${since.toISOString()}`,
  });

  const lastHeartbeat = task.lastHeartbeatAt ?? task.startedAt;
  // Silence is counted from the last heartbeat, or from when this instance could hear again, whichever is later.
  const heardFrom = Math.max(lastHeartbeat.getTime(), rules.hearingSince?.getTime() ?? 0);
  if (at - heardFrom > heartbeatMs) return verdict('NO_HEARTBEAT', lastHeartbeat, heardFrom + heartbeatMs);

  if (task.timeoutMinutes != null && at - task.startedAt.getTime() > task.timeoutMinutes * 60_000) {
    return verdict('OVERTIME', task.startedAt, task.startedAt.getTime() + task.timeoutMinutes * 60_000);
  }

  // Frozen, not dead: its worker must have gone on heartbeating after the last progress, for half the
  // shorter clock. A worker that died just after a heartbeat would otherwise be called frozen a little
  // before its silence reaches the heartbeat timeout (when the stall clock is as short); it is caught as
  // NO_HEARTBEAT soon after instead.
  const lastProgress = task.lastProgressAt ?? task.startedAt;
  if (at - lastProgress.getTime() > stallMs && lastHeartbeat.getTime() - lastProgress.getTime() >= Math.min(stallMs, heartbeatMs) / 2) {
    return verdict('NO_PROGRESS', lastProgress, lastProgress.getTime() + stallMs);
  }

  return null;
}

export interface StuckTask {
  task: Task;
  verdict: StuckVerdict;
}

/** The stuck ones among running tasks. */
export function findStuck(running: readonly Task[], now: Date, rules: StuckRules): StuckTask[] {
  return running.flatMap((task) => {
    const verdict = detectStuck(task, now, rules);
    return verdict ? [{ task, verdict }] : [];
  });
}

/** A line for people: "no heartbeat for 1h", "running for 3h (limit 2h)". */
export function describeStuck(verdict: StuckVerdict, timeoutMinutes?: number | null): string {
  const span = ms(verdict.stuckForMs, { long: true });
  switch (verdict.reason) {
    case 'NO_HEARTBEAT':
      return `no heartbeat for ${span}`;
    case 'NO_PROGRESS':
      return `no progress for ${span}`;
    case 'OVERTIME':
      return timeoutMinutes ? `running for ${span} (limit ${ms(timeoutMinutes * 60_000, { long: true })})` : `running for ${span}`;
  }
}
