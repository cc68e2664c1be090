import { Prisma } from '../../generated/prisma/client.js';
import type { Change } from './change.js';

export interface UpdateSpec {
  pick: Prisma.Sql;
  /** The compare-and-set: conditions on the locked row `t` that must hold for the write to happen. */
  guard: Prisma.Sql;
  set: Prisma.Sql;
  /** Whether the write earns a history entry; compares `t` (new values) with `picked` (old ones). */
  record?: Prisma.Sql;
}

export const updateTask = ({ pick, guard, set, record }: UpdateSpec): Change => ({
  pick,
  statement: Prisma.sql`
    UPDATE "Task" AS t SET ${set}
    FROM picked
    WHERE t.id = picked.id AND ${guard}
    RETURNING t.*, picked.status AS "fromStatus", picked."workerId" AS "fromWorkerId", ${record ?? Prisma.sql`true`} AS record`,
});
