import type { Logger } from 'pino';
import type { EventBus, Topics } from '../events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { TaskEventType, type Task, type TaskChange, type TaskEvent } from './model.js';
import { isAfter, positionOf, type EventPosition } from './position.js';
import { readEvents, settledEnd } from './sql/event-log.js';

export interface EventFeedOptions {
  prisma: PrismaClient;
  bus: EventBus;
  log?: Logger;
  /**
   * How often the feed reads while it has subscribers and nothing woke it: the
   * backstop for writes whose `task:updated` never reached this instance (no
   * Redis between instances, or a writer that died between commit and publish).
   * Default 1000 ms.
   */
  pollMs?: number;
}

export interface FeedSubscription {
  /** Everything up to here was published before this subscription joined; it gets every entry after it. */
  upTo: EventPosition;
  changes: AsyncIterableIterator<TaskChange>;
}

export type EventFeed = ReturnType<typeof createEventFeed>;

const PAGE = 500;
// Tasks as their writers published them, until the entry is read; a writer's publish may outrun or trail its read.
const SNAPSHOTS_KEPT = 10_000;
// While entries wait behind an older transaction, the feed looks again soon, then less often.
const FIRST_RETRY_MS = 5;

/**
 * One reader of the history per instance: it reads settled entries after the
 * last one it published, in the history's order (sql/event-log.ts), and
 * publishes each on `task:settled` for this instance's subscribers. One query
 * per wakeup however many subscribe; a wakeup is a `task:updated` from any
 * instance, a retry while entries wait to settle, or the slow poll. It reads
 * only while someone subscribes, and starts from the end.
 */
export function createEventFeed({ prisma, bus, log, pollMs = 1000 }: EventFeedOptions) {
  /** Undefined while idle (nobody subscribes). */
  let position: EventPosition | undefined;
  let starting: Promise<void> | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let retryMs = 0;
  const snapshots = new Map<bigint, Task | null>();
  // Reports the history did not keep: published after the next read, so they follow the entries committed before them.
  let transients: Topics['task:progressed'][] = [];
  let transientSeq = 0;

  const stopListening = bus.listen('task:updated', (change) => {
    if (position === undefined) return;
    // Heard after the feed read it (another instance's publish, late through Redis): nothing waits for it.
    if (!isAfter(positionOf(change.event), position)) return;
    snapshots.set(change.event.id, change.task ?? null);
    if (snapshots.size > SNAPSHOTS_KEPT) snapshots.delete(snapshots.keys().next().value!);
    wake();
  });
  const stopHearingReports = bus.listen('task:progressed', (report) => {
    if (position === undefined) return;
    // In sequence: no entry this feed heard of waits to be read before it, and no report before it
    // waits either. It goes out now, after the last entry published, with no read of the history.
    if (snapshots.size === 0 && transients.length === 0) return publishTransient(report);
    // Otherwise it follows them: it goes out after the read that publishes them.
    if (transients.length >= SNAPSHOTS_KEPT) transients.shift();
    transients.push(report);
    wake();
  });

  function publishTransient({ task, tokenName, at }: Topics['task:progressed']) {
    bus.publish('task:settled', { event: transientEvent(task, tokenName, at, position!), task, transient: ++transientSeq });
  }

  function wake() {
    if (position === undefined || stopped) return;
    if (reading) {
      again = true;
      return;
    }
    reading = (async () => {
      do {
        again = false;
        try {
          await readOnce();
        } catch (error) {
          log?.error({ err: error }, 'could not read the task history; retrying');
          schedule(pollMs);
        }
      } while (again && position !== undefined && !stopped);
    })().finally(() => (reading = undefined));
  }

  function schedule(ms: number) {
    clearTimeout(timer);
    timer = setTimeout(wake, ms);
    timer.unref?.();
  }

  async function readOnce() {
    if (bus.subscriberCount('task:settled') === 0) return idle();
    const page = await readEvents(prisma, { after: position, limit: PAGE });
    // Entries whose writer's publish has not arrived (or never will) carry the task as it is now.
    const unheard = [...new Set(page.events.filter((e) => !snapshots.has(e.id) && e.type !== 'DELETED').map((e) => e.taskId))];
    const current = unheard.length ? new Map((await prisma.task.findMany({ where: { id: { in: unheard } } })).map((t) => [t.id, t])) : undefined;
    if (position === undefined || stopped) return;
    for (const event of page.events) {
      const task = snapshots.has(event.id) ? snapshots.get(event.id)! : (current?.get(event.taskId) ?? null);
      snapshots.delete(event.id);
      position = { xact: event.xact, id: event.id };
      bus.publish('task:settled', { event, task });
    }
    const heard = transients;
    transients = [];
    for (const report of heard) publishTransient(report);
    if (page.events.length === PAGE) again = true;
    retryMs = page.unsettled ? Math.min(retryMs ? retryMs * 2 : FIRST_RETRY_MS, pollMs) : 0;
    schedule(retryMs || pollMs);
  }

  function idle() {
    position = undefined;
    snapshots.clear();
    transients = [];
    clearTimeout(timer);
  }

  return {
    /**
     * Joins the feed, starting it when idle. Entries up to `upTo` were
     * published before; a caller resuming from an earlier position reads
     * those from the history (up to `upTo`, so nothing comes twice).
     */
    async subscribe(options: { bufferSize?: number } = {}): Promise<FeedSubscription> {
      for (;;) {
        if (stopped) throw new Error('the event feed is stopped');
        if (position !== undefined) return { upTo: position, changes: bus.subscribe('task:settled', options) };
        starting ??= settledEnd(prisma)
          .then((end) => {
            position = end;
            schedule(pollMs);
          })
          .finally(() => (starting = undefined));
        await starting;
      }
    },
    /** Reads now (a test, or a caller that knows something committed). */
    wake,
    async stop() {
      stopped = true;
      stopListening();
      stopHearingReports();
      idle();
      await reading;
      await starting?.catch(() => {});
    },
  };
}

/** A report the history did not keep, shaped as the PROGRESS entry it would have been, at the position of the entry before it. */
function transientEvent(task: Task, tokenName: string | null, at: Date, position: EventPosition): TaskEvent {
  return {
    id: position.id,
    xact: position.xact,
    taskId: task.id,
    kind: task.kind,
    type: TaskEventType.PROGRESS,
    fromStatus: task.status,
    toStatus: task.status,
    progress: task.progress,
    message: task.message,
    actor: task.workerId ?? 'worker',
    tokenName,
    reason: null,
    attempt: task.attempt,
    at,
  };
}
