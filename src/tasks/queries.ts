import type { Clock } from '../clock.js';
import { TaskwardenError } from '../errors.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { TaskStatus, type Db, type Task, type TaskEvent, type TaskEventType } from './model.js';
import type { EventPosition } from './position.js';
import { readEvents, readTaskHistories } from './sql/event-log.js';
import { countFiltered, keysetPage, type ListFilter } from './sql/list.js';
import { selectStuck } from './sql/stuck.js';
import { findStuck, type StuckRules, type StuckTask } from './stuck.js';
import * as valid from './validate.js';

// Reads of tasks and their history: plain functions over a client or a transaction.

export interface TaskFilter {
  status?: TaskStatus[] | null;
  kind?: string | null;
  /** A case-insensitive substring of the name (at most 200 characters). */
  search?: string | null;
}

/** Prisma's page arguments, as the GraphQL connection computes them. */
export interface PageArgs {
  take?: number;
  skip?: number;
  cursor?: Prisma.TaskWhereUniqueInput;
}

export interface HistoryFilter {
  taskId?: string | null;
  kinds?: readonly string[] | null;
  types?: readonly TaskEventType[] | null;
  after?: EventPosition | null;
  limit?: number;
}

/** How long a history read waits for entries that are committed but held behind an older, still running transaction. */
const SETTLE_WAIT_MS = 2000;

export const taskNotFound = (id: string) => new TaskwardenError('NOT_FOUND', `Task ${id} does not exist.`, { id });

export function getTask(db: Db, id: string): Promise<Task | null> {
  return db.task.findUnique({ where: { id: valid.taskId(id) } });
}

export async function requireTask(db: Db, id: string): Promise<Task> {
  const task = await getTask(db, id);
  if (!task) throw taskNotFound(id);
  return task;
}

/** Newest first, by keyset (see sql/list.ts). */
export function listTasks(db: Db, filter: TaskFilter, page: PageArgs = {}): Promise<Task[]> {
  const cursor = page.cursor?.id === undefined ? undefined : { id: valid.taskId(String(page.cursor.id), 'cursor') };
  return keysetPage(db, listFilter(filter), { take: page.take, skip: page.skip, cursor });
}

/** Exact from the counters; with a search, at most SEARCH_COUNT_CAP. */
export function countTasks(db: Db, filter: TaskFilter): Promise<number> {
  return countFiltered(db, listFilter(filter));
}

/**
 * A task's history (or everyone's) in the order every stream delivers it,
 * after a position. An entry committed but not settled yet (an older
 * transaction still runs) is waited for briefly rather than skipped, so the
 * last entry returned is a cursor that misses nothing.
 */
export async function taskHistory(db: Db, filter: HistoryFilter): Promise<TaskEvent[]> {
  const range = {
    taskId: filter.taskId ? valid.taskId(filter.taskId, 'taskId') : undefined,
    kinds: valid.kinds(filter.kinds),
    types: filter.types ?? undefined,
    after: filter.after ?? undefined,
    limit: filter.limit ?? 500,
  };
  const page = await untilSettled(
    () => readEvents(db, range),
    (page) => !page.unsettled || page.events.length === range.limit,
  );
  return page.events;
}

/**
 * The oldest `limit` entries of each task's history, in one statement (Task.events for a page of
 * tasks), waiting briefly for unsettled entries as taskHistory does.
 */
export async function taskHistories(
  db: Db,
  taskIds: readonly string[],
  filter: { types?: readonly TaskEventType[] | null; limit: number },
): Promise<Map<string, TaskEvent[]>> {
  const range = { taskIds, types: filter.types ?? undefined, limit: filter.limit };
  const pages = await untilSettled(
    () => readTaskHistories(db, range),
    (pages) => [...pages.values()].every((page) => !page.unsettled || page.events.length === range.limit),
  );
  return new Map([...pages].map(([id, page]) => [id, page.events]));
}

/** Reads until `settled` says the answer is complete, or SETTLE_WAIT_MS passed. */
async function untilSettled<T>(read: () => Promise<T>, settled: (answer: T) => boolean): Promise<T> {
  const deadline = Date.now() + SETTLE_WAIT_MS;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    const answer = await read();
    if (settled(answer) || Date.now() >= deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** The id of the newest history entry of a task, so live streams know where the snapshot stands. */
export async function lastEventId(db: Db, taskId: string): Promise<bigint | null> {
  const last = await db.taskEvent.findFirst({ where: { taskId }, orderBy: { id: 'desc' }, select: { id: true } });
  return last?.id ?? null;
}

/** Running tasks with what stuck detection needs. A sweep reads only these rows (index on status). */
export function runningTasks(db: Db): Promise<Task[]> {
  return db.task.findMany({ where: { status: TaskStatus.RUNNING }, orderBy: { startedAt: 'asc' } });
}

/**
 * Running tasks that are stuck under these rules at `now`, longest stuck first. The database selects
 * them (the one rule, in SQL: sql/stuck.ts), so only stuck rows are read; detectStuck explains each
 * (reason, since, episode). The two agree on every row (test/scale.test.ts checks it on random rows).
 */
export async function stuckTasks(db: Db, now: Date, rules: StuckRules): Promise<StuckTask[]> {
  const found = findStuck(await selectStuck(db, rules, now), now, rules);
  return found.sort((a, b) => b.verdict.stuckForMs - a.verdict.stuckForMs);
}

/** The reads above on one client, with the time from the clock: what the task service offers. */
export function taskQueries(prisma: PrismaClient, clock: Clock) {
  return {
    get: (id: string) => getTask(prisma, id),
    require: (id: string) => requireTask(prisma, id),
    list: (filter: TaskFilter, page?: PageArgs) => listTasks(prisma, filter, page),
    count: (filter: TaskFilter) => countTasks(prisma, filter),
    history: (filter: HistoryFilter) => taskHistory(prisma, filter),
    histories: (taskIds: readonly string[], filter: { types?: readonly TaskEventType[] | null; limit: number }) => taskHistories(prisma, taskIds, filter),
    lastEventId: (taskId: string) => lastEventId(prisma, taskId),
    stuck: (rules: StuckRules) => stuckTasks(prisma, clock.now(), rules),
    running: (db: Db = prisma) => runningTasks(db),
    /** The stuck ones among running tasks, on `db` (a sweep's transaction), at `now`. */
    stuckAt: (db: Db, now: Date, rules: StuckRules) => stuckTasks(db, now, rules),
  };
}

function listFilter(filter: TaskFilter): ListFilter {
  const search = valid.optionalText(filter.search, 'search', valid.limits.name);
  return { statuses: filter.status ?? undefined, kind: filter.kind || undefined, search: search || undefined };
}
