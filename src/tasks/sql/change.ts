import type { Prisma } from '../../generated/prisma/client.js';

/**
 * A write to "Task", as recordChange runs it. Each file beside this one
 * builds one: its statement returns the task's columns plus "fromStatus",
 * "fromWorkerId" (the worker that held it before the write) and "record"
 * (whether the write earns a history entry). A `pick` runs once, as a
 * materialized CTE named "picked", before the write.
 */
export interface Change {
  /**
   * Locks the row(s) to write, once. It must be a CTE, not a subquery in the
   * write: Postgres may re-scan a subquery per joined row, and a re-scanned
   * `LIMIT 1 FOR UPDATE SKIP LOCKED` would hand out a second task.
   */
  pick?: Prisma.Sql;
  /** The INSERT, UPDATE or DELETE, reading the locked row(s) as "picked". */
  statement: Prisma.Sql;
}
