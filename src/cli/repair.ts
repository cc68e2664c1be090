import type { TaskwardenClient } from '../client/index.js';
import type { TaskFieldsFragment, TaskStatus } from '../client/index.js';
import type { TaskRow } from './task-table.js';

/** A stuck task as `fix-stuck` reports it, whichever way it reached the data. */
export type StuckItem = TaskRow & Pick<TaskFieldsFragment, 'kind' | 'attempt' | 'startedAt' | 'stuckSince'>;

/**
 * What `fix-stuck` works through: the API, or (with the server down) the
 * database itself via the same task service the server uses.
 */
export interface Repairer {
  via: 'api' | 'database';
  /** The URL, or where the database lives. */
  target: string;
  findStuck(timeoutMinutes: number): Promise<StuckItem[]>;
  /** Stops the task (CANCELLED); returns the status it now has. Throws the refusal. */
  stop(id: string, reason: string): Promise<TaskStatus>;
  delete(id: string): Promise<unknown>;
  close(): Promise<void>;
}

export function apiRepairer(client: TaskwardenClient): Repairer {
  return {
    via: 'api',
    target: client.url,
    findStuck: async (timeoutMinutes) => (await client.stuckTasks(timeoutMinutes)).map(stuckItem),
    stop: async (id, reason) => (await client.stopTask(id, reason)).status,
    delete: (id) => client.deleteTask(id),
    close: async () => {},
  };
}

/** Just the fields of a StuckItem (a database row has more, such as its lease token, that must not be shown). */
export const stuckItem = (task: StuckItem): StuckItem => ({
  id: task.id,
  name: task.name,
  kind: task.kind,
  status: task.status,
  progress: task.progress,
  message: task.message,
  workerId: task.workerId,
  attempt: task.attempt,
  startedAt: task.startedAt,
  lastHeartbeatAt: task.lastHeartbeatAt,
  durationSeconds: task.durationSeconds,
  stuckReason: task.stuckReason,
  stuckSince: task.stuckSince,
  stuckForSeconds: task.stuckForSeconds,
});
