import type { Prisma, PrismaClient, Task, TaskEvent } from '../generated/prisma/client.js';
import { TaskEventType, TaskStatus } from '../generated/prisma/enums.js';
import type { taskStatuses } from './lifecycle.js';
import type { EventPosition } from './position.js';

export { TaskEventType, TaskStatus };
export type { Task, TaskEvent };

/** A Prisma client or an open transaction on it: every database operation accepts either. */
export type Db = PrismaClient | Prisma.TransactionClient;

// lifecycle.ts spells the statuses out without importing Prisma (the SDK re-exports it): this stops compiling when the two differ.
type Listed = (typeof taskStatuses)[number];
const _sameStatuses: [TaskStatus, Listed] extends [Listed, TaskStatus] ? true : never = true;

/** Who made a change, as recorded in the task's history. */
export const actors = {
  api: 'api',
  operator: 'operator',
  monitor: 'monitor',
  /** The operator CLI working on the database directly (`taskwarden fix-stuck` with the server down). */
  cli: 'cli',
} as const;

/** One write to a task and the history entry it appended, as published to live subscribers. */
export interface TaskChange {
  event: TaskEvent;
  /**
   * The task as this write left it; null once it is deleted. Absent for an
   * entry replayed from the history, whose moment has passed.
   */
  task?: Task | null;
  /**
   * Set for a progress report the history did not keep (sampled out): a number
   * that tells it apart. It comes live at the position of the entry before it,
   * so resuming from it loses nothing that was kept.
   */
  transient?: number;
  /**
   * The entry right before this one in the history's order, when its writer proved that nothing can
   * ever come between them (sql/event-log.ts precedingEntry): a feed that published that entry last
   * may publish this one without reading the history.
   */
  previous?: EventPosition;
}
