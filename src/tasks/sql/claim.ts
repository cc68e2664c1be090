import { Prisma } from '../../generated/prisma/client.js';
import type { Db } from '../model.js';

/**
 * What makes a pending task claimable, in one place: the claim's pick, a
 * start by id, `waitingFor` and the queue figures all read it.
 *
 * - delay: its runAt has come (null: at once);
 * - dependency: every task it depends on COMPLETED (a deleted one counts as done);
 * - pause, limit: its kind is neither paused nor running its limit (see closedKinds).
 */
export const dependenciesDone = (task: Prisma.Sql) => Prisma.sql`NOT EXISTS (
  SELECT 1 FROM "TaskDependency" d JOIN "Task" p ON p.id = d."dependsOnId"
  WHERE d."taskId" = ${task}.id AND p.status <> 'COMPLETED')`;

export const due = (task: Prisma.Sql, now: Date) => Prisma.sql`(${task}."runAt" IS NULL OR ${task}."runAt" <= ${now})`;

/** Kinds that give out nothing now: paused, or running as many as their limit. Evaluated once per statement. */
export const closedKinds = Prisma.sql`
  SELECT q.kind FROM "KindQueue" q
  WHERE q.paused OR (q."maxRunning" IS NOT NULL
    AND q."maxRunning" <= (SELECT count(*) FROM "Task" r WHERE r.status = 'RUNNING' AND r.kind = q.kind))`;

/** Claim order: highest priority, then the earliest due (runAt, or createdAt), then id. */
export const claimOrder = (task: Prisma.Sql) => Prisma.sql`${task}.priority DESC, COALESCE(${task}."runAt", ${task}."createdAt"), ${task}.id`;

/**
 * Locks the first claimable pending task (of the given kinds) in claim order.
 * SKIP LOCKED lets many workers claim at once without queueing on each other's
 * candidate. Run it after lockLimitedKinds, in the same transaction, so the
 * running counts it reads are fresh.
 */
export const pickNextClaimable = (kinds: string[] | undefined, now: Date) => Prisma.sql`
  SELECT c.id, c.status, c.progress, c.message, c."workerId" FROM "Task" c
  WHERE c.status = 'PENDING' ${kinds ? Prisma.sql`AND c.kind = ANY(${kinds})` : Prisma.empty}
    AND ${due(Prisma.raw('c'), now)}
    AND c.kind NOT IN (${closedKinds})
    AND ${dependenciesDone(Prisma.raw('c'))}
  ORDER BY ${claimOrder(Prisma.raw('c'))}
  LIMIT 1
  FOR UPDATE OF c SKIP LOCKED`;

/** The guard of a start by id: the task is pending, due or not (an explicit start may run it early), and nothing else holds it back. */
export const readyToStart = Prisma.sql`t.kind NOT IN (${closedKinds}) AND ${dependenciesDone(Prisma.raw('t'))}`;

// Advisory lock class for "a claim on a limited kind" (any 32-bit number no other lock uses).
const KIND_LOCK = 0x7a5c_4b1d;

/**
 * Claims of a limited kind take turns, across instances: each takes its kind's
 * advisory lock (until commit), then claims in a new statement, whose snapshot
 * sees every claim that went before. A single statement could not: its snapshot
 * is taken before it waits, so two claimers would both count N-1 running. Locks
 * are taken in kind order, so two claimers never wait on each other in a circle.
 * Unlimited kinds take no lock. PGlite needs none: it runs one statement at a
 * time, so the claim's one statement sees every claim before it.
 */
export async function lockLimitedKinds(db: Db, kinds: string[] | undefined): Promise<void> {
  await db.$queryRaw`
    SELECT pg_advisory_xact_lock(${KIND_LOCK}::int4, hashtext(k.kind))::text AS locked FROM (
      SELECT kind FROM "KindQueue" WHERE "maxRunning" IS NOT NULL ${kinds ? Prisma.sql`AND kind = ANY(${kinds})` : Prisma.empty}
      ORDER BY kind
    ) k`;
}
