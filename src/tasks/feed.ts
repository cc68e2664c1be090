import type { Logger } from 'pino';
import type { EventBus, Topics } from '../events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { TaskEventType, type Task, type TaskChange, type TaskEvent } from './model.js';
import { cursorOf, isAfter, positionOf, samePosition, type EventPosition } from './position.js';
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
// Entries as their writers published them, until they are published here; a writer's publish may outrun or trail the read.
const HEARD_KEPT = 10_000;
// While entries wait behind an older transaction, the feed looks again soon, then less often.
const FIRST_RETRY_MS = 5;

/**
 * One reader of the history per instance: it reads settled entries after the
 * last one it published, in the history's order (sql/event-log.ts), and
 * publishes each on `task:settled` for this instance's subscribers. One query
 * per wakeup however many subscribe; a wakeup is a `task:updated` from any
 * instance, a retry while entries wait to settle, or the slow poll. It reads
 * only while someone subscribes, and starts from the end.
 *
 * It reads only to fill a gap: a change whose writer proved it comes right
 * after the entry published last (`previous`), and a report the history did
 * not keep with nothing heard waiting before it, go out as they are heard.
 * After a resume, an overflow or a publish that never came, the read fills in.
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
  // Entries heard from their writers' publish and not published yet (the task as written, and the
  // entry before them when the writer proved it), by id; and by that previous entry, to follow a chain.
  const heard = new Map<bigint, TaskChange>();
  const following = new Map<string, bigint>();
  // Reports the history did not keep, waiting behind entries heard before them: published once those are.
  let transients: Topics['task:progressed'][] = [];
  let transientSeq = 0;
  let wakeSoon: ReturnType<typeof setImmediate> | undefined;

  const stopListening = bus.listen('task:updated', (change) => {
    if (position === undefined) return;
    // Heard after the feed read it (another instance's publish, late through Redis): nothing waits for it.
    if (!isAfter(positionOf(change.event), position)) return;
    // In sequence: its writer proved it comes right after the entry published last. No read needed.
    if (change.previous && samePosition(change.previous, position)) return publishInSequence(change);
    heard.set(change.event.id, change);
    if (change.previous) following.set(cursorOf(change.previous), change.event.id);
    if (heard.size > HEARD_KEPT) forget(heard.keys().next().value!);
    // Its predecessor may be on its way in the same burst (a batch's entries are published in input
    // order, not id order): the read, needed only if the gap is still open then, waits a turn.
    wakeSoon ??= setImmediate(() => {
      wakeSoon = undefined;
      if (heard.size > 0) wake();
    });
  });
  const stopHearingReports = bus.listen('task:progressed', (report) => {
    if (position === undefined) return;
    // In sequence: no entry this feed heard of waits to be read before it, and no report before it
    // waits either. It goes out now, after the last entry published, with no read of the history.
    if (heard.size === 0 && transients.length === 0) return publishTransient(report);
    // Otherwise it follows them: it goes out after the read that publishes them.
    if (transients.length >= HEARD_KEPT) transients.shift();
    transients.push(report);
    wake();
  });

  function forget(id: bigint) {
    const change = heard.get(id);
    if (!change) return;
    heard.delete(id);
    if (change.previous) following.delete(cursorOf(change.previous));
  }

  /** Publishes this entry and every heard one that its writer chained to it, then the reports that waited on them. */
  function publishInSequence(first: TaskChange) {
    for (let change: TaskChange | undefined = first; change;) {
      forget(change.event.id);
      position = positionOf(change.event);
      bus.publish('task:settled', { event: change.event, task: change.task ?? null });
      const next = following.get(cursorOf(position));
      change = next === undefined ? undefined : heard.get(next);
    }
    if (heard.size === 0) flushTransients();
  }

  function publishTransient({ task, tokenName, at }: Topics['task:progressed']) {
    bus.publish('task:settled', { event: transientEvent(task, tokenName, at, position!), task, transient: ++transientSeq });
  }

  function flushTransients() {
    const waiting = transients;
    transients = [];
    for (const report of waiting) publishTransient(report);
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
    const unheard = [...new Set(page.events.filter((e) => !heard.has(e.id) && e.type !== 'DELETED').map((e) => e.taskId))];
    const current = unheard.length ? new Map((await prisma.task.findMany({ where: { id: { in: unheard } } })).map((t) => [t.id, t])) : undefined;
    if (position === undefined || stopped) return;
    for (const event of page.events) {
      // Published in sequence while this read was under way.
      if (!isAfter(positionOf(event), position)) continue;
      const change = heard.get(event.id);
      const task = change ? (change.task ?? null) : (current?.get(event.taskId) ?? null);
      forget(event.id);
      position = { xact: event.xact, id: event.id };
      bus.publish('task:settled', { event, task });
    }
    // Entries heard whose writer chained them to where the read ended need no read of their own.
    const next = following.get(cursorOf(position));
    if (next !== undefined) publishInSequence(heard.get(next)!);
    flushTransients();
    if (page.events.length === PAGE) again = true;
    retryMs = page.unsettled ? Math.min(retryMs ? retryMs * 2 : FIRST_RETRY_MS, pollMs) : 0;
    schedule(retryMs || pollMs);
  }

  function idle() {
    position = undefined;
    clearImmediate(wakeSoon);
    wakeSoon = undefined;
    heard.clear();
    following.clear();
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
