import { Prisma } from '../generated/prisma/client.js';
import { TaskEventType, TaskStatus, type Db } from './model.js';
import { recordChange, type EventSpec, type RecordedChange } from './sql/record-change.js';
import { finishSet, holdsLease, inStatus, requeueSet, startSet } from './sql/task-sets.js';
import { updateTask } from './sql/update-task.js';
import { readyToStart } from './sql/claim.js';

/**
 * One way a task's state may change, described once: what must hold (the
 * guard), what it sets, the history entry it appends, and the verb a refusal
 * names. A fenced transition is made only by the holder of the task's lease
 * (a worker, or the monitor on the lease it saw); the others leave from the
 * statuses listed.
 */
export interface Transition<P> {
  /** For a refusal: "Cannot <verb> task …". */
  verb: string;
  event: TaskEventType;
  /** `lease`: fenced by the task's lease. Otherwise the statuses it leaves from. */
  from: 'lease' | readonly TaskStatus[];
  /** Further conditions on the locked row `t` (the monitor's: still the same stuck episode). */
  guard?: (params: P) => Prisma.Sql;
  set: (params: P, now: Date) => Prisma.Sql;
  /** Whether the write earns a history entry; compares `t` (new values) with `picked` (old ones). Default: always. */
  record?: Prisma.Sql;
}

/** The task a transition applies to: how to lock it and, when fenced, the lease to hold. */
export interface Target {
  pick: Prisma.Sql;
  leaseToken?: string;
}

/** Who made the change, as its history entry records. */
export type Author = Omit<EventSpec, 'type' | 'at'>;

const transition = <P = Record<string, never>>(t: Transition<P>) => t;

/** The lifecycle's transitions, worker's and operator's. The monitor's own are in monitor/resolve-stuck.ts. */
export const transitions = {
  /**
   * PENDING -> RUNNING under a new lease (a start, or a claim of the next
   * claimable). Never a task that waits for a dependency, or whose kind is
   * paused or at its limit; a start by id may run a delayed task early.
   */
  start: transition<{ workerId: string; leaseToken: string }>({
    verb: 'start',
    event: TaskEventType.STARTED,
    from: [TaskStatus.PENDING],
    guard: () => readyToStart,
    set: ({ workerId, leaseToken }, now) => startSet(workerId, leaseToken, now),
  }),
  /** RUNNING -> COMPLETED: result, status, progress 100 and completedAt land together or not at all. */
  complete: transition<{ result: unknown }>({
    verb: 'complete',
    event: TaskEventType.COMPLETED,
    from: 'lease',
    set: ({ result }, now) =>
      finishSet(TaskStatus.COMPLETED, now, Prisma.sql`, progress = 100, result = ${JSON.stringify(result ?? null)}::jsonb, "lastHeartbeatAt" = ${now}`),
  }),
  fail: transition<{ error: string }>({
    verb: 'fail',
    event: TaskEventType.FAILED,
    from: 'lease',
    set: ({ error }, now) => finishSet(TaskStatus.FAILED, now, Prisma.sql`, error = ${error}, "lastHeartbeatAt" = ${now}`),
  }),
  /**
   * RUNNING -> PENDING by the lease holder whose attempt failed but may
   * succeed again (failTask retryable): due again after its backoff.
   */
  failRetry: transition<{ error: string; runAt: Date }>({
    verb: 'fail',
    event: TaskEventType.REQUEUED,
    from: 'lease',
    guard: () => Prisma.sql`t.attempt < t."maxAttempts"`,
    set: ({ error, runAt }) => Prisma.sql`${requeueSet}, error = ${error}, "runAt" = ${runAt}`,
  }),
  /** RUNNING -> PENDING by the lease holder, for another worker. */
  release: transition({ verb: 'release', event: TaskEventType.REQUEUED, from: 'lease', set: () => requeueSet }),
  stop: transition({
    verb: 'stop',
    event: TaskEventType.CANCELLED,
    from: [TaskStatus.PENDING, TaskStatus.RUNNING],
    set: (_, now) => finishSet(TaskStatus.CANCELLED, now),
  }),
  /** An operator ends a running task whatever its worker is doing. */
  forceCancel: transition({
    verb: 'force-complete',
    event: TaskEventType.CANCELLED,
    from: [TaskStatus.RUNNING],
    set: (_, now) => finishSet(TaskStatus.CANCELLED, now),
  }),
  forceFail: transition<{ error: string }>({
    verb: 'force-complete',
    event: TaskEventType.FAILED,
    from: [TaskStatus.RUNNING],
    set: ({ error }, now) => finishSet(TaskStatus.FAILED, now, Prisma.sql`, error = ${error}`),
  }),
};

/**
 * Makes a transition in one statement with its history entry (see
 * sql/record-change.ts). Null when its guard failed: nothing changed.
 */
export function applyTransition<P>(db: Db, transition: Transition<P>, target: Target, params: P, author: Author, now: Date): Promise<RecordedChange | null> {
  if (transition.from === 'lease' && target.leaseToken === undefined) throw new Error(`${transition.verb}: a fenced transition needs a lease`);
  const base = transition.from === 'lease' ? holdsLease(target.leaseToken!) : inStatus(transition.from);
  const guard = transition.guard ? Prisma.sql`${base} AND ${transition.guard(params)}` : base;
  return recordChange(db, updateTask({ pick: target.pick, guard, set: transition.set(params, now), record: transition.record }), {
    ...author,
    type: transition.event,
    at: now,
  });
}
