import type { EventBus, StuckAlert } from '../events.js';
import { isTerminal, type Task, type TaskChange } from './model.js';
import type { TaskService } from './service.js';
import * as valid from './validate.js';

export interface TaskUpdatesFilter {
  /** Only this task's changes. */
  taskId?: string | null;
  kinds?: readonly string[] | null;
  /**
   * Replay the history after this event id first, then go live: a client
   * that reconnects with the last id it saw misses nothing.
   */
  afterEventId?: bigint | null;
}

const REPLAY_PAGE = 500;

export type LiveService = ReturnType<typeof createLiveService>;

/**
 * The streams behind the subscriptions, built on the event bus and the task
 * history. Each checks its arguments (and that the task exists) before it
 * returns, so a bad subscription fails at once with a clear error.
 */
export function createLiveService({ bus, tasks }: { bus: EventBus; tasks: TaskService }) {
  return {
    async taskUpdates(filter: TaskUpdatesFilter): Promise<AsyncGenerator<TaskChange>> {
      const taskId = filter.taskId ? valid.taskId(filter.taskId) : undefined;
      const kinds = valid.kinds(filter.kinds);
      const after = filter.afterEventId == null ? undefined : filter.afterEventId;
      // Listen before reading the history, so a change committed in between is not missed.
      const live = bus.subscribe('task:updated');
      const changes = (async function* () {
        try {
          const replayed = new Set<bigint>();
          for (let cursor = after; cursor !== undefined; ) {
            const page = await tasks.history({ taskId, kinds, afterId: cursor, limit: REPLAY_PAGE });
            for (const event of page) {
              replayed.add(event.id);
              yield { event };
            }
            cursor = page.length < REPLAY_PAGE ? undefined : page[page.length - 1]!.id;
          }
          for await (const change of live) {
            if (taskId && change.event.taskId !== taskId) continue;
            if (kinds && !kinds.includes(change.event.kind)) continue;
            // Ids are taken before commit, so a live change may carry a lower id than one
            // already replayed: skip exactly what was replayed, not everything below it.
            if (replayed.delete(change.event.id)) continue;
            yield change;
          }
        } finally {
          await live.return?.();
        }
      })();
      return endsAtOnce(live, changes);
    },

    /** The task now, then each change to it; ends when it reaches a terminal state or is deleted. */
    async taskProgress(taskId: string): Promise<AsyncGenerator<Task>> {
      const id = valid.taskId(taskId);
      const live = bus.subscribe('task:updated');
      let task: Task;
      let seen: bigint | null;
      try {
        [task, seen] = await Promise.all([tasks.require(id), tasks.lastEventId(id)]);
      } catch (error) {
        await live.return?.();
        throw error;
      }
      const states = (async function* () {
        try {
          yield task;
          if (isTerminal(task.status)) return;
          for await (const change of live) {
            // A task's events are written under its row lock, so their ids rise in commit order.
            if (change.event.taskId !== id || (seen !== null && change.event.id <= seen)) continue;
            if (!change.task) return;
            yield change.task;
            if (isTerminal(change.task.status)) return;
          }
        } finally {
          await live.return?.();
        }
      })();
      return endsAtOnce(live, states);
    },

    stuckAlerts(): AsyncIterableIterator<StuckAlert> {
      return bus.subscribe('task:stuck');
    },
  };
}

/**
 * A generator parked in `for await` over the bus cannot take return() until
 * the next event arrives (return() queues behind the pending next()), so a
 * closed subscription to a quiet task would live on, holding its connection
 * slot. Ending the bus subscription first wakes it: the stream ends at once.
 */
function endsAtOnce<T>(live: AsyncIterator<unknown>, generator: AsyncGenerator<T>): AsyncGenerator<T> {
  const stream: AsyncGenerator<T> = {
    next: (...args) => generator.next(...args),
    async return(value) {
      await live.return?.();
      return generator.return(value);
    },
    async throw(error) {
      await live.return?.();
      return generator.throw(error);
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}
