import { Prisma } from '../../generated/prisma/client.js';
import type { TaskStatus } from '../model.js';

// The SET and guard fragments transitions are made of (see ../transitions.ts).

/** Into RUNNING under a new lease: the attempt begins afresh. */
export const startSet = (workerId: string, leaseToken: string, now: Date) => Prisma.sql`
  status = 'RUNNING', attempt = t.attempt + 1, "workerId" = ${workerId}, "leaseToken" = ${leaseToken},
  "startedAt" = ${now}, "lastHeartbeatAt" = ${now}, "lastProgressAt" = ${now},
  progress = 0, message = NULL, error = NULL, result = NULL, "completedAt" = NULL, "stuckEpisode" = NULL, "progressRecordedAt" = NULL`;

/** Into a terminal status: the lease ends. */
export const finishSet = (status: TaskStatus, now: Date, extra = Prisma.empty) => Prisma.sql`
  status = ${status}::"TaskStatus", "completedAt" = ${now}, "leaseToken" = NULL ${extra}`;

/** Back to PENDING for another attempt: the lease ends, the next start begins afresh. */
export const requeueSet = Prisma.sql`
  status = 'PENDING', "leaseToken" = NULL, "workerId" = NULL, "startedAt" = NULL,
  "lastHeartbeatAt" = NULL, "lastProgressAt" = NULL, progress = 0, message = NULL, "stuckEpisode" = NULL, "progressRecordedAt" = NULL`;

/** The fence: the task runs under this lease. */
export const holdsLease = (leaseToken: string) => Prisma.sql`t.status = 'RUNNING' AND t."leaseToken" = ${leaseToken}`;

export const inStatus = (statuses: readonly TaskStatus[]) => Prisma.sql`t.status::text = ANY(${[...statuses]})`;
