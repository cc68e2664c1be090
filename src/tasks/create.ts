import { badInput, TaskwardenError } from '../errors.js';
import { TaskStatus, type Db, type Task } from './model.js';
import type { RecordedChange } from './sql/record-change.js';
import { insertDependencies, insertTasks, lockDependencies, orderedTaskId, type NewTask } from './sql/insert-tasks.js';
import { batchOrder, inputDigest, maxBatch, maxDependencies, validBackoff, type RetryBackoff } from './scheduling.js';
import * as valid from './validate.js';

export interface CreateTaskInput {
  name: string;
  kind?: string | null;
  params?: unknown;
  timeoutMinutes?: number | null;
  /** Its own NO_HEARTBEAT clock; absent: the configured HEARTBEAT_TIMEOUT. */
  heartbeatTimeoutSeconds?: number | null;
  /** Its own NO_PROGRESS clock; absent: the configured STALL_TIMEOUT. */
  stallTimeoutMinutes?: number | null;
  maxAttempts?: number | null;
  /** Higher is claimed first. Default 0. */
  priority?: number | null;
  /** Not claimable before. */
  runAt?: Date | null;
  /** The same key returns the task that has it. */
  idempotencyKey?: string | null;
  /** Tasks (by id) that must COMPLETE first. */
  dependsOn?: readonly string[] | null;
  /** In a batch: tasks of the same batch (by index) that must COMPLETE first. */
  dependsOnIndex?: readonly number[] | null;
  /** Its own retry backoff; each part left out comes from RETRY_BACKOFF. */
  retryBackoff?: { initialSeconds?: number | null; factor?: number | null; maxSeconds?: number | null } | null;
}

export const priorityLimit = 1_000_000;
const idempotencyKeyLength = 200;

/** A batch checked and ready to write: nothing below can fail on bad input any more, only on the database's state. */
export interface PreparedBatch {
  tasks: NewTask[];
  /** Per task: ids of existing tasks it depends on. */
  dependsOn: string[][];
  /** Per task: indexes in the batch it depends on. */
  dependsOnIndex: number[][];
  /** Whether the write needs a transaction (more than the one INSERT statement). */
  multiStatement: boolean;
}

/**
 * Checks every input (a bad one refuses the whole batch, naming it as
 * `inputs[i].field` when there are several) and gives each task its id and,
 * when keyed, the digest of what it asked for.
 */
export function prepareBatch(inputs: readonly CreateTaskInput[], options: { defaults: RetryBackoff; now: Date; batch: boolean }): PreparedBatch {
  if (inputs.length === 0) throw badInput('inputs', 'must hold at least one task');
  if (inputs.length > maxBatch) throw badInput('inputs', `at most ${maxBatch} tasks in one call (got ${inputs.length})`);
  const tasks: NewTask[] = [];
  const dependsOn: string[][] = [];
  const dependsOnIndex: number[][] = [];
  inputs.forEach((input, i) => {
    try {
      if (!options.batch && input.dependsOnIndex?.length)
        throw badInput('dependsOnIndex', 'is for createTasks only (a dependency on another task of the same call); use dependsOn with task ids');
      const deps = [...new Set((input.dependsOn ?? []).map((id) => valid.taskId(id, 'dependsOn')))];
      const indexes = [...new Set(input.dependsOnIndex ?? [])];
      if (deps.length + indexes.length > maxDependencies) throw badInput('dependsOn', `at most ${maxDependencies} dependencies per task`);
      const backoff = input.retryBackoff ? validBackoff(input.retryBackoff, options.defaults) : null;
      const fields = {
        name: valid.text(input.name, 'name', valid.limits.name),
        kind: input.kind == null ? 'backtest' : valid.text(input.kind, 'kind', valid.limits.kind),
        params: valid.json(input.params ?? {}, 'params', valid.limits.paramsBytes),
        maxAttempts: input.maxAttempts == null ? 3 : valid.wholeNumber(input.maxAttempts, 'maxAttempts', 1, valid.limits.maxAttempts),
        timeoutMinutes: input.timeoutMinutes == null ? null : valid.positive(input.timeoutMinutes, 'timeoutMinutes', valid.limits.timeoutMinutes),
        heartbeatTimeoutSeconds:
          input.heartbeatTimeoutSeconds == null
            ? null
            : valid.between(
                input.heartbeatTimeoutSeconds,
                'heartbeatTimeoutSeconds',
                valid.limits.heartbeatTimeoutSeconds.min,
                valid.limits.heartbeatTimeoutSeconds.max,
              ),
        stallTimeoutMinutes:
          input.stallTimeoutMinutes == null ? null : valid.positive(input.stallTimeoutMinutes, 'stallTimeoutMinutes', valid.limits.timeoutMinutes),
        priority: input.priority == null ? 0 : valid.wholeNumber(input.priority, 'priority', -priorityLimit, priorityLimit),
        runAt: input.runAt ?? null,
        backoffInitialSeconds: backoff?.initialSeconds ?? null,
        backoffFactor: backoff?.factor ?? null,
        backoffMaxSeconds: backoff?.maxSeconds ?? null,
      };
      const key = input.idempotencyKey == null ? null : valid.text(input.idempotencyKey, 'idempotencyKey', idempotencyKeyLength);
      tasks.push({
        ...fields,
        id: orderedTaskId(options.now, i),
        idempotencyKey: key,
        // What was asked, not what was defaulted: a later default change does not make a repeat a conflict.
        idempotencyDigest:
          key === null
            ? null
            : inputDigest({
                ...fields,
                backoffInitialSeconds: undefined,
                backoffFactor: undefined,
                backoffMaxSeconds: undefined,
                retryBackoff: input.retryBackoff,
                dependsOn: [...deps].sort(),
                dependsOnIndex: [...indexes].sort((a, b) => a - b),
              }),
        createdAt: options.now,
      });
      dependsOn.push(deps);
      dependsOnIndex.push(indexes);
    } catch (error) {
      throw inputs.length > 1 && error instanceof TaskwardenError && error.code === 'BAD_USER_INPUT' ? prefixed(error, i) : error;
    }
  });
  batchOrder(dependsOnIndex);
  const multiStatement = tasks.length > 1 || tasks.some((t) => t.idempotencyKey !== null) || dependsOn.some((d) => d.length > 0);
  return { tasks, dependsOn, dependsOnIndex, multiStatement };
}

function prefixed(error: TaskwardenError, index: number) {
  const field = `inputs[${index}].${String(error.details.field ?? '')}`;
  return new TaskwardenError('BAD_USER_INPUT', `inputs[${index}].${error.message}`, { ...error.details, field, index });
}

/**
 * Writes a prepared batch: all of it or none (run it in one transaction when
 * `multiStatement`). A task whose key another task holds is that task (when
 * the input is the same) or IDEMPOTENCY_CONFLICT. Returns the tasks in input
 * order and the changes to publish (the new ones only: a repeat is silent).
 */
export async function writeBatch(
  db: Db,
  batch: PreparedBatch,
  author: { actor: string; tokenName: string | null },
): Promise<{ tasks: Task[]; created: RecordedChange[] }> {
  await checkDependencies(db, [...new Set(batch.dependsOn.flat())]);
  const created = await insertTasks(db, batch.tasks, author);
  const byId = new Map(created.map((change) => [change.row.id, change.row]));
  // The tasks not inserted lost their key to an existing task (or an earlier one of this batch).
  const skippedKeys = batch.tasks.filter((t) => !byId.has(t.id)).map((t) => t.idempotencyKey!);
  const holders = new Map(
    skippedKeys.length === 0 ? [] : (await db.task.findMany({ where: { idempotencyKey: { in: skippedKeys } } })).map((t) => [t.idempotencyKey!, t]),
  );
  const tasks = batch.tasks.map((wanted, i) => {
    const inserted = byId.get(wanted.id);
    if (inserted) return inserted;
    const holder = holders.get(wanted.idempotencyKey!);
    if (!holder) {
      // The holder was deleted between the insert and this read: the key is free again, but this call saw it taken.
      throw new TaskwardenError('IDEMPOTENCY_CONFLICT', `idempotencyKey "${wanted.idempotencyKey}" changed hands while this call ran; try again.`, {
        index: i,
      });
    }
    if (holder.idempotencyDigest !== wanted.idempotencyDigest) {
      throw new TaskwardenError(
        'IDEMPOTENCY_CONFLICT',
        `idempotencyKey "${wanted.idempotencyKey}" belongs to task ${holder.id}, created with a different input. Nothing was created.`,
        { field: 'idempotencyKey', id: holder.id, ...(batch.tasks.length > 1 && { index: i }) },
      );
    }
    return holder;
  });
  const links = batch.tasks.flatMap((task, i) =>
    byId.has(task.id)
      ? [
          ...batch.dependsOn[i]!.map((dependsOnId) => ({ taskId: task.id, dependsOnId })),
          ...batch.dependsOnIndex[i]!.map((j) => ({ taskId: task.id, dependsOnId: tasks[j]!.id })),
        ]
      : [],
  );
  // A new task of this call may depend on an earlier one that was a repeat: an existing task, maybe finished badly.
  await checkDependencies(db, [...new Set(links.map((l) => l.dependsOnId).filter((id) => !byId.has(id) && !batch.dependsOn.some((d) => d.includes(id))))]);
  await insertDependencies(db, links);
  return { tasks, created };
}

/** Locks the existing tasks new ones will depend on; each must exist and not have ended FAILED or CANCELLED. */
async function checkDependencies(db: Db, ids: string[]) {
  if (ids.length === 0) return;
  const found = new Map((await lockDependencies(db, ids)).map((row) => [row.id, row.status]));
  for (const id of ids) {
    const status = found.get(id);
    if (status === undefined) throw new TaskwardenError('NOT_FOUND', `dependsOn: task ${id} does not exist. Nothing was created.`, { field: 'dependsOn', id });
    if (status === TaskStatus.FAILED || status === TaskStatus.CANCELLED) {
      throw new TaskwardenError('DEPENDENCY_FAILED', `dependsOn: task ${id} is ${status}, so a task depending on it could never run. Nothing was created.`, {
        field: 'dependsOn',
        id,
        status,
      });
    }
  }
}
