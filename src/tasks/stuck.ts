import ms from 'ms';
import { TaskStatus, type Task } from './model.js';

export const stuckReasons = ['NO_HEARTBEAT', 'OVERTIME', 'NO_PROGRESS'] as const;
/**
 * Why a running task counts as stuck:
 * - NO_HEARTBEAT: its worker has been silent (dead, or cut off) for longer than the timeout;
 * - OVERTIME: it has run longer than its own `timeoutMinutes`;
 * - NO_PROGRESS: its worker still heartbeats but neither progress nor message changed for longer
 *   than the timeout (and heartbeats kept coming for at least half of it after the last progress):
 *   alive but frozen, such as the seed's "stuck at 90% while saving results".
 */
export type StuckReason = (typeof stuckReasons)[number];

export interface StuckVerdict {
  reason: StuckReason;
  /** The last sign of what is missing: the last heartbeat, the last progress change, or the start (OVERTIME). */
  since: Date;
  stuckForMs: number;
  /**
   * Names this stuck episode: the same attempt, reason and last sign of life.
   * A task that recovers and freezes again starts a new episode.
   */
  episode: string;
}

export type StuckInput = Pick<Task, 'status' | 'attempt' | 'startedAt' | 'lastHeartbeatAt' | 'lastProgressAt' | 'timeoutMinutes'>;

/** The one place that decides whether a task is stuck. Checked in order: a dead worker first. */
export function detectStuck(task: StuckInput, now: Date, timeoutMs: number): StuckVerdict | null {
  if (task.status !== TaskStatus.RUNNING || !task.startedAt) return null;
  const at = now.getTime();
  const verdict = (reason: StuckReason, since: Date): StuckVerdict => ({
    reason,
    since,
    stuckForMs: at - since.getTime(),
    episode: `${task.attempt}:${reason}:${since.toISOString()}`,
  });

  const lastHeartbeat = task.lastHeartbeatAt ?? task.startedAt;
  if (at - lastHeartbeat.getTime() > timeoutMs) return verdict('NO_HEARTBEAT', lastHeartbeat);

  if (task.timeoutMinutes != null && at - task.startedAt.getTime() > task.timeoutMinutes * 60_000) {
    return verdict('OVERTIME', task.startedAt);
  }

  // Frozen, not dead: its worker must have gone on heartbeating for at least half the timeout after
  // the last progress. A worker that died just after a heartbeat would otherwise be called frozen a
  // little before its silence reaches the timeout; it is caught as NO_HEARTBEAT soon after instead.
  const lastProgress = task.lastProgressAt ?? task.startedAt;
  if (at - lastProgress.getTime() > timeoutMs && lastHeartbeat.getTime() - lastProgress.getTime() >= timeoutMs / 2) {
    return verdict('NO_PROGRESS', lastProgress);
  }

  return null;
}

export interface StuckTask {
  task: Task;
  verdict: StuckVerdict;
}

/** The stuck ones among running tasks. */
export function findStuck(running: readonly Task[], now: Date, timeoutMs: number): StuckTask[] {
  return running.flatMap((task) => {
    const verdict = detectStuck(task, now, timeoutMs);
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
