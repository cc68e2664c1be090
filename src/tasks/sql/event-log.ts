import { Prisma } from '../../generated/prisma/client.js';
import type { Db, TaskEvent, TaskEventType } from '../model.js';
import { origin, type EventPosition } from '../position.js';

export interface EventRange {
  taskId?: string;
  kinds?: readonly string[];
  types?: readonly TaskEventType[];
  /** Entries strictly after this position. */
  after?: EventPosition;
  /** Entries up to this position, included. */
  upTo?: EventPosition;
  limit: number;
}

export interface EventPage {
  /** Settled entries in position order: nothing can ever come before the last of them that is not here now. */
  events: TaskEvent[];
  /** Whether entries past these are committed but not settled yet (a transaction older than theirs still runs). */
  unsettled: boolean;
}

/**
 * Reads the history in (xact, id) order. Ids come from a sequence when a row is
 * inserted, but transactions commit in another order, so reading "ids after N"
 * can skip an entry that commits later with a smaller id. An entry is settled
 * once its transaction is older than the snapshot's xmin: every transaction
 * that can still commit has a newer id, so whatever commits later sorts after
 * it. The horizon and the rows come from one statement, hence one snapshot.
 *
 * The horizon is cluster-wide: a long write transaction anywhere on the server
 * (another database included) holds settled entries back, never loses them.
 */
export async function readEvents(db: Db, range: EventRange): Promise<EventPage> {
  const after = range.after ?? origin;
  const rows = await db.$queryRaw<(TaskEvent & { horizon: bigint })[]>`
    SELECT e.*, h.horizon
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h
    CROSS JOIN LATERAL (
      SELECT * FROM "TaskEvent" e
      WHERE (e.xact, e.id) > (${after.xact}, ${after.id})
        ${range.upTo ? Prisma.sql`AND (e.xact, e.id) <= (${range.upTo.xact}, ${range.upTo.id})` : Prisma.empty}
        ${range.taskId ? Prisma.sql`AND e."taskId" = ${range.taskId}::uuid` : Prisma.empty}
        ${range.kinds ? Prisma.sql`AND e.kind = ANY(${range.kinds})` : Prisma.empty}
        ${range.types?.length ? Prisma.sql`AND e.type::text = ANY(${range.types})` : Prisma.empty}
      ORDER BY e.xact, e.id
      LIMIT ${range.limit}
    ) e`;
  // Rows are in xact order, so the settled ones are a prefix.
  const settled = rows.findIndex((row) => row.xact >= row.horizon);
  const events = (settled < 0 ? rows : rows.slice(0, settled)).map(({ horizon: _horizon, ...event }) => event);
  return { events, unsettled: settled >= 0 };
}

/** The position of the last settled entry: a reader that starts here sees every entry committed from now on. */
export async function settledEnd(db: Db): Promise<EventPosition> {
  const [last] = await db.$queryRaw<EventPosition[]>`
    SELECT e.xact, e.id FROM "TaskEvent" e
    WHERE e.xact < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY e.xact DESC, e.id DESC
    LIMIT 1`;
  return last ?? origin;
}

/**
 * The oldest `limit` entries of each task's history, for many tasks in one statement (a page of
 * tasks with their events), each a settled prefix as in readEvents. Tasks without entries are absent.
 */
export async function readTaskHistories(
  db: Db,
  range: { taskIds: readonly string[]; types?: readonly TaskEventType[]; limit: number },
): Promise<Map<string, EventPage>> {
  const pages = new Map<string, EventPage>();
  const taskIds = [...new Set(range.taskIds)];
  if (taskIds.length === 0) return pages;
  const rows = await db.$queryRaw<(TaskEvent & { horizon: bigint })[]>`
    SELECT e.*, h.horizon
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h
    CROSS JOIN unnest(${taskIds}::uuid[]) AS t(id)
    CROSS JOIN LATERAL (
      SELECT * FROM "TaskEvent" e
      WHERE e."taskId" = t.id
        ${range.types?.length ? Prisma.sql`AND e.type::text = ANY(${range.types})` : Prisma.empty}
      ORDER BY e.xact, e.id
      LIMIT ${range.limit}
    ) e
    ORDER BY e."taskId", e.xact, e.id`;
  for (const { horizon, ...event } of rows) {
    let page = pages.get(event.taskId);
    if (!page) pages.set(event.taskId, (page = { events: [], unsettled: false }));
    // Each task's rows are in xact order, so its settled ones are a prefix.
    if (page.unsettled || event.xact >= horizon) page.unsettled = true;
    else page.events.push(event);
  }
  return pages;
}

/**
 * For a statement that appends history entries, its column "_previous": the position of the entry
 * right before its first one ("<xact>.<id>", "0.0" before the first entry ever), when nothing can
 * ever come between them; else NULL. That holds when no transaction older than this one still runs
 * at this statement's snapshot: every entry that will ever sort before this transaction's is then
 * committed and visible here, and any later one sorts after (a newer xact, or a later id of this
 * one). The feed then publishes the change without reading the history (tasks/feed.ts).
 */
export const precedingEntry = Prisma.sql`CASE WHEN pg_snapshot_xmin(pg_current_snapshot()) = pg_current_xact_id() THEN COALESCE((
    SELECT p.xact::text || '.' || p.id::text FROM "TaskEvent" p
    WHERE p.xact <= pg_current_xact_id()::text::bigint
    ORDER BY p.xact DESC, p.id DESC LIMIT 1), '0.0') END`;

/**
 * One statement's entries share its transaction and follow each other in id order: the first comes
 * right after `previous` (its "_previous"), each next one right after the one before it.
 */
export function chainPreceding(changes: readonly { event: TaskEvent | null; previous?: EventPosition }[], previous: EventPosition | undefined) {
  if (!previous) return;
  const appended = changes.filter((c) => c.event).sort((a, b) => (a.event!.id < b.event!.id ? -1 : 1));
  for (const change of appended) {
    change.previous = previous;
    previous = { xact: change.event!.xact, id: change.event!.id };
  }
}

/** The "_previous" column of a statement that used `precedingEntry`. */
export function parsePreceding(value: unknown): EventPosition | undefined {
  if (typeof value !== 'string') return undefined;
  const [xact, id] = value.split('.');
  return { xact: BigInt(xact!), id: BigInt(id!) };
}
