import type { EventBus, StuckAlert } from '../events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { EventFeed } from './feed.js';
import { isTerminal } from './lifecycle.js';
import type { Task, TaskChange, TaskEvent } from './model.js';
import { isAfter, positionOf, type EventPosition } from './position.js';
import { readEvents } from './sql/event-log.js';
import type { TaskService } from './service.js';
import * as valid from './validate.js';

export interface TaskUpdatesFilter {
  /** Only this task's changes. */
  taskId?: string | null;
  kinds?: readonly string[] | null;
  /**
   * Replay the history after this position first, then go live: a client
   * that resumes from the last entry it received gets everything after it,
   * once each, in the history's order.
   */
  after?: EventPosition | null;
}

const REPLAY_PAGE = 500;

export type LiveService = ReturnType<typeof createLiveService>;

/**
 * The streams behind the subscriptions, built on the event feed (settled
 * history entries in one order, see feed.ts) and the task history. Each checks
 * its arguments (and that the task exists) before it returns, so a bad
 * subscription fails at once with a clear error.
 */
export function createLiveService({ prisma, bus, tasks, feed }: { prisma: PrismaClient; bus: EventBus; tasks: TaskService; feed: EventFeed }) {
  return {
    async taskUpdates(filter: TaskUpdatesFilter): Promise<AsyncGenerator<TaskChange>> {
      const taskId = filter.taskId ? valid.taskId(filter.taskId) : undefined;
      const kinds = valid.kinds(filter.kinds);
      // Join before reading the history: the feed has published everything up to upTo and
      // queues everything after it, so replaying (after, upTo] leaves no gap and no overlap.
      const { upTo, changes } = await feed.subscribe();
      const wanted = (event: TaskEvent) => (!taskId || event.taskId === taskId) && (!kinds || kinds.includes(event.kind));
      return endingTheBusFirst(
        changes,
        (async function* () {
          try {
            let last = filter.after ?? undefined;
            while (last && isAfter(upTo, last)) {
              const page = await readEvents(prisma, { taskId, kinds, after: last, upTo, limit: REPLAY_PAGE });
              for (const event of page.events) yield { event };
              if (page.events.length < REPLAY_PAGE) last = upTo;
              else last = positionOf(page.events[page.events.length - 1]!);
            }
            for await (const change of changes) {
              // A cursor from an instance whose feed is further along: what it already has is skipped.
              if (last && change.transient === undefined && !isAfter(positionOf(change.event), last)) continue;
              if (wanted(change.event)) yield change;
            }
          } finally {
            await changes.return?.();
          }
        })(),
      );
    },

    /** The task now, then each change to it; ends when it reaches a terminal state or is deleted. */
    async taskProgress(taskId: string): Promise<AsyncGenerator<Task>> {
      const id = valid.taskId(taskId);
      const { changes } = await feed.subscribe();
      let task: Task;
      let seen: bigint | null;
      try {
        [task, seen] = await Promise.all([tasks.require(id), tasks.lastEventId(id)]);
      } catch (error) {
        await changes.return?.();
        throw error;
      }
      return endingTheBusFirst(
        changes,
        (async function* () {
          try {
            yield task;
            if (isTerminal(task.status)) return;
            for await (const change of changes) {
              // A task's events are written under its row lock, so their ids rise in commit order.
              if (change.event.taskId !== id) continue;
              // A report the history did not keep has no id of its own; it comes in its place in the feed.
              if (change.transient === undefined) {
                if (seen !== null && change.event.id <= seen) continue;
                seen = change.event.id;
              }
              if (!change.task) return;
              yield change.task;
              if (isTerminal(change.task.status)) return;
            }
          } finally {
            await changes.return?.();
          }
        })(),
      );
    },

    stuckAlerts(): AsyncIterableIterator<StuckAlert> {
      return bus.subscribe('task:stuck');
    },
  };
}

/**
 * An async generator cannot run its `finally` while it is awaiting the bus, so
 * a subscriber that leaves during a quiet spell would hold its bus
 * subscription until the next event. Ending the bus subscription first wakes
 * the generator, which then finishes at once.
 */
function endingTheBusFirst<T>(live: AsyncIterator<unknown>, generator: AsyncGenerator<T>): AsyncGenerator<T> {
  const finish = generator.return.bind(generator);
  generator.return = async (value) => {
    await live.return?.();
    return finish(value);
  };
  return generator;
}
