import type { StuckAction } from '../tasks/stuck.js';
import { Prisma } from '../generated/prisma/client.js';
import { TaskEventType, TaskStatus, type Db, type Task } from '../tasks/model.js';
import { pickById } from '../tasks/sql/pick-by-id.js';
import type { RecordedChange } from '../tasks/sql/record-change.js';
import { finishSet, requeueSet } from '../tasks/sql/task-sets.js';
import { describeStuck, type StuckTask } from '../tasks/stuck.js';
import { applyTransition, type Author, type Transition } from '../tasks/transitions.js';
import { retryDelay, type RetryBackoff } from '../tasks/scheduling.js';

export interface StuckResolution {
  change: RecordedChange;
  /** What was done: `retry` becomes `fail` when no attempts are left. */
  outcome: StuckAction;
}

type Stuck = StuckTask & { error: string; runAt: Date | null };

/**
 * Still the episode the sweep saw: no heartbeat (or progress) since, so a
 * worker that wakes up between detection and action keeps its task.
 */
const sameEpisode = ({ task, verdict }: Stuck) =>
  ({
    NO_HEARTBEAT: Prisma.sql`t."lastHeartbeatAt" IS NOT DISTINCT FROM ${task.lastHeartbeatAt}`,
    NO_PROGRESS: Prisma.sql`t."lastProgressAt" IS NOT DISTINCT FROM ${task.lastProgressAt}`,
    OVERTIME: Prisma.sql`true`,
  })[verdict.reason];

/** The monitor's transitions, one per outcome, each fenced by the lease the sweep saw. */
export const stuckTransitions: Record<StuckAction, Transition<Stuck>> = {
  /** Report only, once per stuck episode. */
  none: {
    verb: 'mark stuck',
    event: TaskEventType.STUCK,
    from: 'lease',
    guard: (stuck) => Prisma.sql`${sameEpisode(stuck)} AND t."stuckEpisode" IS DISTINCT FROM ${stuck.verdict.episode}`,
    set: ({ verdict }) => Prisma.sql`"stuckEpisode" = ${verdict.episode}`,
  },
  cancel: { verb: 'cancel stuck', event: TaskEventType.CANCELLED, from: 'lease', guard: sameEpisode, set: (_, now) => finishSet(TaskStatus.CANCELLED, now) },
  fail: {
    verb: 'fail stuck',
    event: TaskEventType.FAILED,
    from: 'lease',
    guard: sameEpisode,
    set: ({ error }, now) => finishSet(TaskStatus.FAILED, now, Prisma.sql`, error = ${error}`),
  },
  /** Back to PENDING for another attempt, due again after its retry backoff. */
  retry: {
    verb: 'retry stuck',
    event: TaskEventType.REQUEUED,
    from: 'lease',
    guard: sameEpisode,
    set: ({ runAt }) => Prisma.sql`${requeueSet}, "runAt" = ${runAt}`,
  },
};

/**
 * The monitor's transition for a stuck task, run inside the sweep's unit of
 * work (`db`). Returns null when the task moved on, or when `none` already
 * reported this episode.
 */
export async function resolveStuck(
  db: Db,
  { task, verdict }: { task: Task; verdict: StuckTask['verdict'] },
  action: StuckAction,
  author: Required<Pick<Author, 'actor'>> & Pick<Author, 'tokenName'>,
  now: Date,
  /** For `retry`: the backoff of tasks that have none of their own (RETRY_BACKOFF). */
  retryBackoff: RetryBackoff,
): Promise<StuckResolution | null> {
  if (!task.leaseToken) return null;
  const why = `stuck: ${describeStuck(verdict)}`;
  const outcome: StuckAction = action === 'retry' && task.attempt >= task.maxAttempts ? 'fail' : action;
  const error = action === 'retry' ? `${why}; no attempts left (${task.attempt} of ${task.maxAttempts})` : why;
  // The history records how long a retry waits: "NO_HEARTBEAT; retry in 31.4s".
  const retry = outcome === 'retry' ? retryDelay(task, retryBackoff, now) : null;
  const change = await applyTransition(
    db,
    stuckTransitions[outcome],
    { pick: pickById(task.id), leaseToken: task.leaseToken },
    { task, verdict, error, runAt: retry?.runAt ?? null },
    { ...author, reason: retry ? `${verdict.reason}; ${retry.note}` : verdict.reason },
    now,
  );
  return change && { change, outcome };
}
