import { Prisma } from '../../generated/prisma/client.js';

/**
 * Locks the oldest pending task (of the given kinds). SKIP LOCKED lets many
 * workers claim at once without queueing on each other's candidate.
 */
export const pickOldestPending = (kinds: string[] | undefined) => Prisma.sql`
  SELECT id, status, progress, message, "workerId" FROM "Task"
  WHERE status = 'PENDING' ${kinds ? Prisma.sql`AND kind = ANY(${kinds})` : Prisma.empty}
  ORDER BY "createdAt", id
  LIMIT 1
  FOR UPDATE SKIP LOCKED`;
