// Reads what the checker needs from the database, the same SQL on PostgreSQL and PGlite.
import type { ChaosRecord } from './checker.js';

export interface Query {
  query<T>(sql: string): Promise<{ rows: T[] }>;
}

export async function readDatabase(db: Query): Promise<Pick<ChaosRecord, 'events' | 'tasks' | 'alerts' | 'sweeps'>> {
  const events = await db.query<{ xact: string; id: string; taskId: string; type: string; actor: string; reason: string | null; toStatus: string | null }>(
    `SELECT e.xact::text AS xact, e.id::text AS id, e."taskId"::text AS "taskId", e.type::text AS type, e.actor, e.reason, e."toStatus"::text AS "toStatus" FROM "TaskEvent" e ORDER BY e.xact, e.id`,
  );
  const tasks = await db.query<{ id: string; status: string }>(`SELECT id::text AS id, status::text AS status FROM "Task"`);
  const alerts = await db.query<{ key: string; rule: string; taskId: string | null }>(`SELECT key, rule, "taskId"::text AS "taskId" FROM "Alert"`);
  const sweeps = await db.query<{ s: string; f: string }>(
    `SELECT (extract(epoch FROM "startedAt") * 1000)::bigint::text AS s, (extract(epoch FROM "finishedAt") * 1000)::bigint::text AS f FROM "MonitorSweep"`,
  );
  return {
    events: events.rows.map(({ xact, id, ...e }) => ({ cursor: `${xact}.${id}`, ...e })),
    tasks: tasks.rows,
    alerts: alerts.rows,
    sweeps: sweeps.rows.map((r) => ({ startedAt: Number(r.s), finishedAt: Number(r.f) })),
  };
}
