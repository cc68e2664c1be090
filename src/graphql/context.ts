import type { Principal } from '../auth/roles.js';
import type { Services } from '../services.js';
import type { StuckVerdict } from '../tasks/stuck.js';
import type { Task } from '../tasks/model.js';

export interface Context {
  services: Services;
  /** Who is calling (see auth/access.ts). */
  principal: Principal;
  /**
   * The name recorded in a task's history for this caller's operator actions:
   * the token's name; unset (so "operator") when the server is open.
   */
  actor?: string;
  /** The API token behind this caller (its name), recorded beside every history entry it writes; null in open mode. */
  tokenName: string | null;
  /** Puts a subscription under the connection limits and revocation (for SSE; a WebSocket is registered when it connects). */
  live<T>(source: AsyncIterable<T>): AsyncIterable<T>;
  /**
   * Stuck verdicts already reached in this request (by `stuckTasks` or a
   * cleanup with its own timeout), so a task's `stuckReason` agrees with the
   * list it came in.
   */
  verdicts: WeakMap<Task, StuckVerdict>;
}
