import { Prisma } from '../../generated/prisma/client.js';
import { terminalStatuses } from '../lifecycle.js';
import type { Change } from './change.js';
import { pickById } from './pick-by-id.js';

export const deleteTerminalTask = (id: string): Change => ({
  pick: pickById(id),
  statement: Prisma.sql`
    DELETE FROM "Task" AS t
    USING picked
    WHERE t.id = picked.id AND t.status::text = ANY(${[...terminalStatuses]})
    RETURNING t.*, picked.status AS "fromStatus", picked."workerId" AS "fromWorkerId", true AS record`,
});
