import { Prisma } from '../../generated/prisma/client.js';
import type { Db, Task, TaskStatus } from '../model.js';
import { readCounts } from './counts.js';

export interface ListFilter {
  statuses?: readonly TaskStatus[];
  kind?: string;
  /** A case-insensitive substring of the name, as typed: LIKE wildcards in it match only themselves. */
  search?: string;
}

/** A page as the GraphQL connection asks for it (Prisma's shape): `take` < 0 reads backwards from the cursor. */
export interface ListPage {
  take?: number;
  skip?: number;
  cursor?: { id: string };
}

/**
 * With a search, totalCount counts up to this many and stops: a count of every match of a
 * common substring would read a large part of the table. The dashboard shows "1,000+".
 */
export const SEARCH_COUNT_CAP = 1000;

const likePattern = (search: string) => `%${search.replace(/[\\%_]/g, '\\$&')}%`;

function conditions(filter: ListFilter, status: TaskStatus | undefined): Prisma.Sql {
  const parts: Prisma.Sql[] = [];
  if (status) parts.push(Prisma.sql`t.status = ${status}::"TaskStatus"`);
  if (filter.kind !== undefined) parts.push(Prisma.sql`t.kind = ${filter.kind}`);
  // The trigram index on name serves ILIKE '%...%' (backslash is ILIKE's escape by default).
  if (filter.search) parts.push(Prisma.sql`t.name ILIKE ${likePattern(filter.search)}`);
  return parts.length ? Prisma.join(parts, ' AND ') : Prisma.sql`true`;
}

/**
 * Tasks newest first, by keyset on (createdAt, id): a page after (or before) a cursor starts where
 * the cursor row sits in the index that matches the filter, whatever the page's depth. Several
 * statuses are read as one ordered branch per status, merged, because PostgreSQL cannot read
 * `status IN (...)` from the (status, createdAt, id) index in createdAt order.
 */
export async function keysetPage(db: Db, filter: ListFilter, page: ListPage = {}): Promise<Task[]> {
  const take = page.take ?? 50;
  const backwards = take < 0;
  const limit = Math.abs(take);
  let after = Prisma.sql`true`;
  let offset = page.skip ?? 0;
  if (page.cursor) {
    const [at] = await db.$queryRaw<{ createdAt: Date; id: string }[]>`SELECT "createdAt", id FROM "Task" WHERE id = ${page.cursor.id}::uuid`;
    if (!at) return [];
    // Prisma's cursor is inclusive and the connection skips it; a strict keyset excludes it already.
    offset = Math.max(0, offset - 1);
    after = backwards
      ? Prisma.sql`(t."createdAt", t.id) > (${at.createdAt}::timestamptz, ${at.id}::uuid)`
      : Prisma.sql`(t."createdAt", t.id) < (${at.createdAt}::timestamptz, ${at.id}::uuid)`;
  }
  const order = backwards ? Prisma.sql`"createdAt" ASC, id ASC` : Prisma.sql`"createdAt" DESC, id DESC`;
  const statuses = filter.statuses?.length ? [...new Set(filter.statuses)] : [undefined];
  const branch = (status: TaskStatus | undefined) =>
    Prisma.sql`(SELECT t.* FROM "Task" t WHERE ${conditions(filter, status)} AND ${after} ORDER BY ${order} LIMIT ${limit + offset})`;
  const rows =
    statuses.length === 1
      ? await db.$queryRaw<Task[]>`SELECT * FROM ${branch(statuses[0])} t ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`
      : await db.$queryRaw<Task[]>`SELECT * FROM (${Prisma.join(statuses.map(branch), ' UNION ALL ')}) t ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`;
  return backwards ? rows.reverse() : rows;
}

/**
 * How many tasks match: from the counters when only status and kind filter (exact, and the same
 * cost at any size); with a search, counted up to SEARCH_COUNT_CAP.
 */
export async function countFiltered(db: Db, filter: ListFilter): Promise<number> {
  if (!filter.search) {
    const counts = await readCounts(db, { kind: filter.kind, statuses: filter.statuses });
    return counts.reduce((sum, c) => sum + c.n, 0);
  }
  const statuses = filter.statuses?.length ? Prisma.sql`AND t.status::text = ANY(${[...filter.statuses]})` : Prisma.empty;
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM (SELECT 1 FROM "Task" t WHERE ${conditions(filter, undefined)} ${statuses} LIMIT ${SEARCH_COUNT_CAP}) capped`;
  return row?.n ?? 0;
}
