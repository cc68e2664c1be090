import type { Services } from '../services.js';
import type { StuckVerdict } from '../tasks/stuck.js';
import type { Task } from '../tasks/model.js';

export interface Context {
  services: Services;
  /**
   * Who is calling, as recorded in a task's history for operator actions.
   * Unset means an anonymous local operator.
   */
  actor?: string;
  /**
   * Stuck verdicts already reached in this request (by `stuckTasks` or a
   * cleanup with its own timeout), so a task's `stuckReason` agrees with the
   * list it came in.
   */
  verdicts: WeakMap<Task, StuckVerdict>;
}
