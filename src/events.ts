import { createBus, type Bus, type BusOptions } from './bus.js';
import type { StuckAction } from './tasks/stuck.js';
import type { Task, TaskChange } from './tasks/model.js';
import type { StuckReason } from './tasks/stuck.js';

/** A stuck task the monitor (or a cleanup) found, and what was done about it. */
export interface StuckAlert {
  /** The task after the action. */
  task: Task;
  reason: StuckReason;
  stuckSince: Date;
  stuckForSeconds: number;
  detectedAt: Date;
  actionTaken: StuckAction;
  actor: string;
}

/** What is published, by whom. Payloads are published only after their write committed. */
export interface Topics {
  /**
   * Every task write that earned a history entry (transitions, progress changes, deletions), as
   * its writer publishes it after commit: it wakes the event feeds and carries the task as written.
   * It arrives in commit order, which is not the history's order: stream the history from `task:settled`.
   */
  'task:updated': TaskChange;
  /**
   * An accepted progress report that the history did not keep (sampled out, see PROGRESS_HISTORY_INTERVAL),
   * as its writer publishes it after commit: live streams still carry it (feed.ts).
   */
  'task:progressed': { task: Task; tokenName: string | null; at: Date };
  /**
   * Every history entry once it is settled, in the history's order, read from the database by this
   * instance's event feed (src/tasks/feed.ts). Never crosses instances: each instance reads its own.
   */
  'task:settled': TaskChange;
  /** Every stuck task that was handled (once per stuck episode). */
  'task:stuck': StuckAlert;
  /** A token was created or revoked (tokenId set for a revocation), so every instance forgets what it cached. */
  'token:changed': { tokenId: string | null; name: string };
}

export type Topic = keyof Topics;

export type { SubscribeOptions } from './bus.js';

/** Taskwarden's bus: its topics, `task:settled` kept to each instance. */
export type EventBus = Bus<Topics>;

export function createEventBus(options: Omit<BusOptions<Topics>, 'localTopics'> = {}): EventBus {
  // Each instance's event feed reads the history itself, so settled entries never cross instances.
  return createBus<Topics>({ ...options, localTopics: ['task:settled'] });
}
