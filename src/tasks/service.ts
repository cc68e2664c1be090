import { randomBytes } from 'node:crypto';
import type { AlertService } from '../alerts/service.js';
import type { Clock } from '../clock.js';
import { badInput, TaskwardenError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { actors, TaskEventType, TaskStatus, type Db, type Task } from './model.js';
import { taskNotFound, taskQueries } from './queries.js';
import { deleteTerminalTask } from './sql/delete-terminal-task.js';
import { insertTask } from './sql/insert-task.js';
import { pickById } from './sql/pick-by-id.js';
import { pickOldestPending } from './sql/pick-oldest-pending.js';
import { recordChange } from './sql/record-change.js';
import { applyTransition, transitions, type Author, type Transition } from './transitions.js';
import type { Commit } from './unit-of-work.js';
import * as valid from './validate.js';

export type { PageArgs, TaskFilter } from './queries.js';

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
}

export interface TaskLease {
  task: Task;
  /** Presented by the worker on every write; only its holder may report, complete or fail the task. */
  leaseToken: string;
}

export interface TaskServiceDeps {
  prisma: PrismaClient;
  clock: Clock;
  /** Runs each write and announces it after its commit (see unit-of-work.ts). */
  commit: Commit;
  /** Failures are alerted on in the same transaction as the failure itself. */
  alerts: Pick<AlertService, 'taskFailed'>;
}

export type TaskService = ReturnType<typeof createTaskService>;

/**
 * The task lifecycle: the commands, over the reads of queries.ts. Every write
 * is one compare-and-set statement that also appends the task's history (see
 * transitions.ts and sql/record-change.ts); when it loses a race or its guard
 * fails, the caller gets an error saying why, and nothing changed.
 */
export function createTaskService({ prisma, clock, commit, alerts }: TaskServiceDeps) {
  /**
   * Makes a transition on one task, or says why it cannot. A failure and its
   * alerts commit together; any other transition is a single statement.
   */
  function write<P>(transition: Transition<P>, id: string, params: P, author: Author, leaseToken?: string): Promise<Task> {
    const fails = transition.event === TaskEventType.FAILED;
    return commit(
      async ({ db, changed, alerted }) => {
        const change = await applyTransition(db, transition, { pick: pickById(id), leaseToken }, params, author, clock.now());
        if (!change) throw await explainRefusal(db, id, transition.verb, leaseToken);
        if (fails) alerted(await alerts.taskFailed(db, change));
        return changed(change);
      },
      { transaction: fails },
    );
  }

  async function explainRefusal(db: Db, id: string, verb: string, leaseToken?: string) {
    const current = await db.task.findUnique({ where: { id }, select: { status: true, leaseToken: true } });
    if (!current) return taskNotFound(id);
    if (leaseToken !== undefined && current.leaseToken !== leaseToken) {
      const why =
        current.status === TaskStatus.RUNNING
          ? 'another lease holds it (it was claimed again, or this token is wrong)'
          : `it is ${current.status} now (stopped, force-completed, finished or requeued elsewhere)`;
      return new TaskwardenError('LEASE_MISMATCH', `This lease no longer holds task ${id}: ${why}. Nothing was written; stop working on it.`, {
        status: current.status,
      });
    }
    return new TaskwardenError('INVALID_TRANSITION', `Cannot ${verb} task ${id}: it is ${current.status}.`, { status: current.status });
  }

  return {
    ...taskQueries(prisma, clock),

    async create(input: CreateTaskInput, actor: string = actors.api, tokenName: string | null = null): Promise<Task> {
      const task = {
        name: valid.text(input.name, 'name', valid.limits.name),
        kind: input.kind == null ? 'backtest' : valid.text(input.kind, 'kind', valid.limits.kind),
        params: valid.json(input.params ?? {}, 'params', valid.limits.paramsBytes),
        maxAttempts: input.maxAttempts == null ? 3 : valid.wholeNumber(input.maxAttempts, 'maxAttempts', 1, valid.limits.maxAttempts),
        timeoutMinutes:
          input.timeoutMinutes == null ? null : valid.positive(input.timeoutMinutes, 'timeoutMinutes', valid.limits.timeoutMinutes),
        heartbeatTimeoutSeconds:
          input.heartbeatTimeoutSeconds == null
            ? null
            : valid.between(input.heartbeatTimeoutSeconds, 'heartbeatTimeoutSeconds', valid.limits.heartbeatTimeoutSeconds.min, valid.limits.heartbeatTimeoutSeconds.max),
        stallTimeoutMinutes:
          input.stallTimeoutMinutes == null ? null : valid.positive(input.stallTimeoutMinutes, 'stallTimeoutMinutes', valid.limits.timeoutMinutes),
        createdAt: clock.now(),
      };
      return commit(
        async ({ db, changed }) => changed((await recordChange(db, insertTask(task), { type: TaskEventType.CREATED, actor, tokenName, at: task.createdAt }))!),
        { transaction: false },
      );
    },

    /** PENDING -> RUNNING for one task, minting a new lease. */
    async start(id: string, workerId: string, tokenName: string | null = null): Promise<TaskLease> {
      valid.taskId(id);
      valid.workerId(workerId);
      const leaseToken = mintLease();
      const task = await write(transitions.start, id, { workerId, leaseToken }, { actor: workerId, tokenName });
      return { task, leaseToken };
    },

    /** Starts the oldest pending task of the given kinds, or returns null when none is pending. */
    async claim(workerId: string, kinds?: readonly string[] | null, tokenName: string | null = null): Promise<TaskLease | null> {
      valid.workerId(workerId);
      const only = valid.kinds(kinds);
      if (only?.length === 0) return null;
      const leaseToken = mintLease();
      return commit(
        async ({ db, changed }) => {
          const target = { pick: pickOldestPending(only) };
          const change = await applyTransition(db, transitions.start, target, { workerId, leaseToken }, { actor: workerId, tokenName }, clock.now());
          return change && { task: changed(change), leaseToken };
        },
        { transaction: false },
      );
    },

    /**
     * A heartbeat, with progress and/or message when given. Only a change of
     * progress or message counts as progress (and is recorded in the history);
     * a bare heartbeat just proves the worker is alive.
     */
    async reportProgress(id: string, leaseToken: string, report: { progress?: number | null; message?: string | null } = {}, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      const progress = report.progress == null ? null : valid.progress(report.progress);
      const message = valid.optionalText(report.message, 'message', valid.limits.message) ?? null;
      return write(transitions.report, id, { progress, message }, { tokenName }, leaseToken);
    },

    /** RUNNING -> COMPLETED: result, status, progress 100 and completedAt land together or not at all. */
    async complete(id: string, leaseToken: string, result: unknown, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      valid.json(result, 'result', valid.limits.resultBytes);
      return write(transitions.complete, id, { result }, { tokenName }, leaseToken);
    },

    /** RUNNING -> FAILED, by the worker holding the lease. */
    async fail(id: string, leaseToken: string, error: string, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      valid.text(error, 'error', valid.limits.error, { multiline: true });
      return write(transitions.fail, id, { error }, { tokenName, reason: firstLine(error) }, leaseToken);
    },

    /**
     * RUNNING -> PENDING by the lease holder: a worker that is shutting down
     * hands its task back for another worker instead of leaving it to go stuck.
     */
    async release(id: string, leaseToken: string, reason?: string | null, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      const why = valid.optionalText(reason, 'reason', valid.limits.reason, { multiline: true }) ?? 'released by its worker';
      return write(transitions.release, id, {}, { tokenName, reason: why }, leaseToken);
    },

    /** PENDING or RUNNING -> CANCELLED. The worker's lease ends with it. */
    async stop(id: string, options: { reason?: string | null; actor?: string; tokenName?: string | null } = {}): Promise<Task> {
      valid.taskId(id);
      const reason = valid.optionalText(options.reason, 'reason', valid.limits.reason, { multiline: true }) ?? 'stopped';
      return write(transitions.stop, id, {}, { actor: options.actor ?? actors.operator, tokenName: options.tokenName, reason });
    },

    /** RUNNING -> CANCELLED or FAILED, whatever its worker is doing: for a task that is stuck or whose worker is gone. */
    async forceComplete(
      id: string,
      options: { status?: TaskStatus | null; reason?: string | null; actor?: string; tokenName?: string | null } = {},
    ): Promise<Task> {
      valid.taskId(id);
      const status = options.status ?? TaskStatus.CANCELLED;
      if (status !== TaskStatus.CANCELLED && status !== TaskStatus.FAILED) {
        throw badInput('status', `forceComplete sets CANCELLED or FAILED, not ${status}`);
      }
      const reason = valid.optionalText(options.reason, 'reason', valid.limits.reason, { multiline: true }) ?? 'force-completed';
      const author = { actor: options.actor ?? actors.operator, tokenName: options.tokenName, reason };
      return status === TaskStatus.FAILED
        ? write(transitions.forceFail, id, { error: reason }, author)
        : write(transitions.forceCancel, id, {}, author);
    },

    /** Deletes a terminal task. Its history stays, ending with a DELETED entry. */
    async delete(id: string, options: { actor?: string; tokenName?: string | null } = {}): Promise<string> {
      valid.taskId(id);
      const author = { type: TaskEventType.DELETED, actor: options.actor ?? actors.operator, tokenName: options.tokenName, at: clock.now() };
      const deleted = await commit(
        async ({ db, changed }) => {
          const change = await recordChange(db, deleteTerminalTask(id), author, { deletes: true });
          return change && changed(change);
        },
        { transaction: false },
      );
      if (deleted) return id;
      const current = await prisma.task.findUnique({ where: { id }, select: { status: true } });
      if (!current) throw taskNotFound(id);
      throw new TaskwardenError('TASK_NOT_TERMINAL', `Task ${id} is ${current.status}: stop or force-complete it first, then delete it.`, {
        status: current.status,
      });
    },
  };
}

function mintLease(): string {
  return randomBytes(24).toString('base64url');
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0]!.trim();
  return line.length > valid.limits.reason ? `${line.slice(0, valid.limits.reason - 1)}…` : line;
}
