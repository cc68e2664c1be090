import { Prisma } from '../../generated/prisma/client.js';
import type { Change } from './change.js';

export interface NewTask {
  name: string;
  kind: string;
  params: unknown;
  maxAttempts: number;
  timeoutMinutes: number | null;
  heartbeatTimeoutSeconds: number | null;
  stallTimeoutMinutes: number | null;
  createdAt: Date;
}

export const insertTask = (task: NewTask): Change => ({
  statement: Prisma.sql`
    INSERT INTO "Task" (name, kind, params, "maxAttempts", "timeoutMinutes", "heartbeatTimeoutSeconds", "stallTimeoutMinutes", "createdAt")
    VALUES (${task.name}, ${task.kind}, ${JSON.stringify(task.params ?? {})}::jsonb, ${task.maxAttempts}, ${task.timeoutMinutes},
            ${task.heartbeatTimeoutSeconds}, ${task.stallTimeoutMinutes}, ${task.createdAt})
    RETURNING *, NULL::"TaskStatus" AS "fromStatus", NULL::text AS "fromWorkerId", true AS record`,
});
