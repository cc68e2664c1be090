import { randomBytes } from 'node:crypto';
import { TaskEventType, type Db, type Task } from '../model.js';
import { chainPreceding, parsePreceding, precedingEntry } from './event-log.js';
import { eventFields, recordedChangeOf, type RecordedChange } from './record-change.js';

export interface NewTask {
  id: string;
  name: string;
  kind: string;
  params: unknown;
  maxAttempts: number;
  timeoutMinutes: number | null;
  heartbeatTimeoutSeconds: number | null;
  stallTimeoutMinutes: number | null;
  priority: number;
  runAt: Date | null;
  idempotencyKey: string | null;
  idempotencyDigest: string | null;
  backoffInitialSeconds: number | null;
  backoffFactor: number | null;
  backoffMaxSeconds: number | null;
  createdAt: Date;
}

/**
 * Inserts tasks and their CREATED entries in one statement. A task whose
 * idempotencyKey is taken (by an existing task, or an earlier one of the same
 * batch) is skipped, not an error: the caller looks up who holds the key.
 * Returns the inserted ones.
 */
export async function insertTasks(db: Db, tasks: readonly NewTask[], event: { actor: string; tokenName: string | null }): Promise<RecordedChange[]> {
  if (tasks.length === 0) return [];
  const rows = tasks.map((task, ord) => ({
    ...task,
    ord,
    params: task.params ?? {},
    runAt: task.runAt?.toISOString() ?? null,
    createdAt: task.createdAt.toISOString(),
  }));
  const inserted = await db.$queryRaw<Record<string, unknown>[]>`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
        id uuid, name text, kind text, params jsonb, "maxAttempts" int, "timeoutMinutes" float8, "heartbeatTimeoutSeconds" float8,
        "stallTimeoutMinutes" float8, priority int, "runAt" timestamptz, "idempotencyKey" text, "idempotencyDigest" text,
        "backoffInitialSeconds" float8, "backoffFactor" float8, "backoffMaxSeconds" float8, "createdAt" timestamptz, ord int)
    ),
    changed AS (
      INSERT INTO "Task" (id, name, kind, params, "maxAttempts", "timeoutMinutes", "heartbeatTimeoutSeconds", "stallTimeoutMinutes",
                          priority, "runAt", "idempotencyKey", "idempotencyDigest", "backoffInitialSeconds", "backoffFactor", "backoffMaxSeconds", "createdAt")
      SELECT id, name, kind, params, "maxAttempts", "timeoutMinutes", "heartbeatTimeoutSeconds", "stallTimeoutMinutes",
             priority, "runAt", "idempotencyKey", "idempotencyDigest", "backoffInitialSeconds", "backoffFactor", "backoffMaxSeconds", "createdAt"
      FROM input ORDER BY ord
      ON CONFLICT ("idempotencyKey") DO NOTHING
      RETURNING *
    ),
    event AS (
      INSERT INTO "TaskEvent" ("taskId", kind, type, "fromStatus", "toStatus", progress, message, actor, "tokenName", reason, attempt, at)
      SELECT changed.id, changed.kind, ${TaskEventType.CREATED}::"TaskEventType", NULL, changed.status, changed.progress, changed.message,
             ${event.actor}, ${event.tokenName}, NULL, changed.attempt, changed."createdAt"
      FROM changed JOIN input USING (id) ORDER BY input.ord
      RETURNING *
    ),
    preceding AS (SELECT ${precedingEntry} AS previous WHERE EXISTS (SELECT 1 FROM event))
    SELECT changed.*, ${eventFields}, (SELECT previous FROM preceding) AS "_previous" FROM changed JOIN event ON event."taskId" = changed.id`;
  // Each row came back with the statement's "_previous"; only the first entry follows it directly.
  const changes = inserted.map(recordedChangeOf);
  chainPreceding(changes, parsePreceding(inserted[0]?._previous));
  return changes;
}

/** Links tasks to the tasks they wait for. */
export async function insertDependencies(db: Db, links: readonly { taskId: string; dependsOnId: string }[]): Promise<void> {
  if (links.length === 0) return;
  await db.$executeRaw`
    INSERT INTO "TaskDependency" ("taskId", "dependsOnId")
    SELECT * FROM unnest(${links.map((l) => l.taskId)}::uuid[], ${links.map((l) => l.dependsOnId)}::uuid[])
    ON CONFLICT DO NOTHING`;
}

/**
 * Locks the tasks others are about to depend on (FOR SHARE), so none of them
 * can fail or be cancelled until the links are committed: the cascade that
 * follows such a failure then sees the new dependants too.
 */
export function lockDependencies(db: Db, ids: readonly string[]): Promise<{ id: string; status: Task['status'] }[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.$queryRaw`SELECT id, status FROM "Task" WHERE id = ANY(${[...ids]}::uuid[]) ORDER BY id FOR SHARE`;
}

/**
 * A time-ordered id (UUID version 7 layout): the tasks of a batch, created in
 * the same millisecond, keep their submission order in the claim order's last
 * tie-break (by id). `sequence` counts within the batch.
 */
export function orderedTaskId(now: Date, sequence: number, seed: Buffer = randomBytes(10)): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(now.getTime(), 0, 6);
  // 12 bits of sequence where v7 has rand_a, then random bits.
  bytes[6] = 0x70 | ((sequence >> 8) & 0x0f);
  bytes[7] = sequence & 0xff;
  seed.copy(bytes, 8, 0, 8);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
