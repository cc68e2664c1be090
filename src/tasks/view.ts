import type { Task } from './model.js';
import type { StuckReason, StuckVerdict } from './stuck.js';

/**
 * What every way of showing a task (GraphQL, REST, the CLI's direct-database
 * mode) adds to its columns: its run time and, under a stuck verdict, how it
 * is stuck. Worked out once, from the row, the verdict and the time.
 */
export interface TaskView {
  /** Run time of the current (or last) attempt: start to finish, or start to now while running; null before a start. */
  durationSeconds: number | null;
  isStuck: boolean;
  stuckReason: StuckReason | null;
  /** The last heartbeat (NO_HEARTBEAT), the last progress change (NO_PROGRESS) or the start (OVERTIME). */
  stuckSince: Date | null;
  stuckForSeconds: number | null;
}

export function taskView(task: Pick<Task, 'startedAt' | 'completedAt'>, verdict: StuckVerdict | null, now: Date): TaskView {
  return {
    durationSeconds: task.startedAt ? ((task.completedAt ?? now).getTime() - task.startedAt.getTime()) / 1000 : null,
    isStuck: verdict !== null,
    stuckReason: verdict?.reason ?? null,
    stuckSince: verdict?.since ?? null,
    stuckForSeconds: verdict ? verdict.stuckForMs / 1000 : null,
  };
}
