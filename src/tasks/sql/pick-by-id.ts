import { Prisma } from '../../generated/prisma/client.js';

/** Locks one task by id; the lock makes racing writers take turns, so exactly one wins. */
export const pickById = (id: string) => Prisma.sql`SELECT id, status, progress, message, "workerId" FROM "Task" WHERE id = ${id}::uuid FOR UPDATE`;
