import { Prisma } from '../../generated/prisma/client.js';
import type { Db, Task } from '../model.js';
import type { StuckRules } from '../stuck.js';

// The one stuck rule, in SQL: which running tasks are stuck under these rules at `now`. The sweep,
// stuckTasks, cleanupStuck and the stats count all select with it, so the database returns the
// stuck rows only; detectStuck (../stuck.ts) then explains each (reason, since, episode). Both
// compute in float8 milliseconds, as JavaScript does, so they agree on every row at every boundary
// (test/stuck-sql.test.ts checks it on random rows and settings).
//
//   NO_HEARTBEAT  now - max(last heartbeat (else start), hearingSince) > heartbeat clock
//   OVERTIME      now - start > timeoutMinutes
//   NO_PROGRESS   now - last progress (else start) > stall clock, and heartbeats went on after it
//                 for at least half the shorter clock
// The clocks are the task's own unless an operator's override replaces both.

const ms = (column: Prisma.Sql) => Prisma.sql`(EXTRACT(EPOCH FROM ${column}) * 1000)::float8`;

/** `FROM "Task" t` plus the clocks of each row, as `c`; then a WHERE that holds for stuck rows only. */
function stuckFrom(rules: StuckRules, now: Date, createdSince?: Date | null): Prisma.Sql {
  const override = rules.overrideMs ?? null;
  const at = now.getTime();
  const hearing = rules.hearingSince?.getTime() ?? null;
  return Prisma.sql`
    FROM "Task" t
    CROSS JOIN LATERAL (
      SELECT
        COALESCE(${override}::float8, t."heartbeatTimeoutSeconds" * 1000, ${rules.heartbeatTimeoutMs}::float8) AS hb_ms,
        COALESCE(${override}::float8, t."stallTimeoutMinutes" * 60000, ${rules.stallTimeoutMs}::float8) AS stall_ms,
        ${ms(Prisma.sql`COALESCE(t."lastHeartbeatAt", t."startedAt")`)} AS last_hb,
        ${ms(Prisma.sql`COALESCE(t."lastProgressAt", t."startedAt")`)} AS last_prog,
        ${ms(Prisma.sql`t."startedAt"`)} AS started
    ) c
    WHERE t.status = 'RUNNING' AND t."startedAt" IS NOT NULL
      ${createdSince ? Prisma.sql`AND t."createdAt" >= ${createdSince}` : Prisma.empty}
      AND (
      ${at}::float8 - GREATEST(c.last_hb, ${hearing}::float8) > c.hb_ms
      OR (t."timeoutMinutes" IS NOT NULL AND ${at}::float8 - c.started > t."timeoutMinutes" * 60000)
      OR (${at}::float8 - c.last_prog > c.stall_ms AND c.last_hb - c.last_prog >= LEAST(c.stall_ms, c.hb_ms) / 2)
    )`;
}

/** The running tasks stuck under these rules at `now`, oldest start first. */
export function selectStuck(db: Db, rules: StuckRules, now: Date): Promise<Task[]> {
  return db.$queryRaw<Task[]>`SELECT t.* ${stuckFrom(rules, now)} ORDER BY t."startedAt", t.id`;
}

/** How many running tasks (created since `createdSince`, when given) are stuck under these rules at `now`. */
export async function countStuck(db: Db, rules: StuckRules, now: Date, createdSince?: Date | null): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n ${stuckFrom(rules, now, createdSince)}`;
  return row?.n ?? 0;
}

/** How many tasks are running: the rows a sweep examines. */
export async function countRunning(db: Db): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "Task" WHERE status = 'RUNNING'`;
  return row?.n ?? 0;
}
