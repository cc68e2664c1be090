import { randomBytes } from 'node:crypto';
import type { AlertService } from '../alerts/service.js';
import type { Clock } from '../clock.js';
import { badInput, TaskwardenError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { actors, TaskEventType, TaskStatus, type Db, type Task } from './model.js';
import { taskNotFound, taskQueries } from './queries.js';
import { deleteTerminalTask } from './sql/delete-terminal-task.js';
import { pickById } from './sql/pick-by-id.js';
import { lockLimitedKinds, pickNextClaimable } from './sql/claim.js';
import { holdbackOf } from './sql/queue-figures.js';
import { cancelWhatWaits, endsBadly } from './cascade.js';
import { prepareBatch, writeBatch, type CreateTaskInput } from './create.js';
import { describeHoldback } from './queues.js';
import { retryDelay, type RetryBackoff } from './scheduling.js';
import { recordChange } from './sql/record-change.js';
import { applyTransition, transitions, type Author, type Transition } from './transitions.js';
import type { Commit, UnitOfWork } from './unit-of-work.js';
import type { RawQuery } from '../db/open.js';
import type { EventBus } from '../events.js';
import { createProgressIngest, leaseMismatch, MAX_BATCH, type ReportResult } from './progress-ingest.js';
import * as valid from './validate.js';

export type { PageArgs, TaskFilter } from './queries.js';

export type { CreateTaskInput };

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
  /** Where progress reports the history did not keep are announced (`task:progressed`). */
  bus: EventBus;
  /** Failures are alerted on in the same transaction as the failure itself. */
  alerts: Pick<AlertService, 'taskFailed' | 'record'>;
  /** RETRY_BACKOFF: how long a retry waits when its task has no backoff of its own. */
  retryBackoff: RetryBackoff;
  /**
   * The database runs one statement at a time for one process (PGlite): a
   * claim is then one statement with nothing to race against, and needs no
   * kind lock or transaction (see sql/claim.ts). False, the safe default: Postgres.
   */
  serialDatabase?: boolean;
  /** PROGRESS_HISTORY_INTERVAL: one PROGRESS entry per task at most this often, plus every change of message. Default 30 s. */
  progressHistoryIntervalMs?: number;
  /** The driver, for the progress statement (PostgreSQL); absent: through Prisma. */
  query?: RawQuery;
}

export interface ProgressReportInput {
  id: string;
  leaseToken: string;
  progress?: number | null;
  message?: string | null;
}

export type TaskService = ReturnType<typeof createTaskService>;

/**
 * The task lifecycle: the commands, over the reads of queries.ts. Every write
 * is one compare-and-set statement that also appends the task's history (see
 * transitions.ts and sql/record-change.ts); when it loses a race or its guard
 * fails, the caller gets an error saying why, and nothing changed.
 */
export function createTaskService({
  prisma,
  clock,
  commit,
  bus,
  alerts,
  retryBackoff,
  serialDatabase = false,
  progressHistoryIntervalMs = 30_000,
  query,
}: TaskServiceDeps) {
  // Heartbeats and progress reports are group-committed; the history keeps a sample, the live stream all of them.
  const ingest = createProgressIngest({ commit, bus, query, clock, historyIntervalMs: progressHistoryIntervalMs });

  /** A report's input, checked: a bad value is the caller's bug, refused before anything is written. */
  const progressRow = (report: ProgressReportInput, tokenName: string | null, at = '') => ({
    id: valid.taskId(report.id, `${at}id`),
    leaseToken: report.leaseToken,
    progress: report.progress == null ? null : valid.progress(report.progress, `${at}progress`),
    message: valid.optionalText(report.message, `${at}message`, valid.limits.message) ?? null,
    tokenName,
  });

  /**
   * Makes a transition on one task, or says why it cannot. A failure and its
   * alerts commit together; any other transition is a single statement.
   */
  function write<P>(transition: Transition<P>, id: string, params: P, author: Author, leaseToken?: string): Promise<Task> {
    // A failure commits with its alerts; a failure or a cancellation with the cancellation of what depends on it.
    const ends = transition.event === TaskEventType.FAILED || transition.event === TaskEventType.CANCELLED;
    return commit(
      async (uow) => {
        const { db, changed, alerted } = uow;
        const change = await applyTransition(db, transition, { pick: pickById(id), leaseToken }, params, author, clock.now());
        if (!change) throw await explainRefusal(db, id, transition.verb, leaseToken);
        if (transition.event === TaskEventType.FAILED) alerted(await alerts.taskFailed(db, change));
        const row = changed(change);
        if (endsBadly(change)) await cancelWhatWaits(uow, [change], alerts, clock.now());
        return row;
      },
      { transaction: ends },
    );
  }

  /** A claim or a start: on Postgres in a transaction after the kind locks (see sql/claim.ts); on PGlite as it is. */
  const underKindLocks = <T>(kinds: string[] | undefined, work: (uow: UnitOfWork) => Promise<T>) =>
    commit<T>(
      async (uow) => {
        if (!serialDatabase) await lockLimitedKinds(uow.db, kinds);
        return work(uow);
      },
      { transaction: !serialDatabase },
    );

  async function createBatch(inputs: readonly CreateTaskInput[], actor: string, tokenName: string | null, batch: boolean): Promise<Task[]> {
    const now = clock.now();
    const prepared = prepareBatch(inputs, { defaults: retryBackoff, now, batch });
    return commit(
      async ({ db, changed }) => {
        const { tasks, created } = await writeBatch(db, prepared, { actor, tokenName });
        created.forEach(changed);
        return tasks;
      },
      // A batch of 1,000 takes longer than Prisma's default 5 s on a busy machine.
      { transaction: prepared.multiStatement, timeout: 60_000, maxWait: 10_000 },
    );
  }

  async function explainRefusal(db: Db, id: string, verb: string, leaseToken?: string) {
    const current = await db.task.findUnique({ where: { id }, select: { status: true, leaseToken: true } });
    if (!current) return taskNotFound(id);
    if (leaseToken !== undefined && current.leaseToken !== leaseToken) return leaseMismatch(id, current.status);
    return new TaskwardenError('INVALID_TRANSITION', `Cannot ${verb} task ${id}: it is ${current.status}.`, { status: current.status });
  }

  return {
    ...taskQueries(prisma, clock),

    async create(input: CreateTaskInput, actor: string = actors.api, tokenName: string | null = null): Promise<Task> {
      return (await createBatch([input], actor, tokenName, false))[0]!;
    },

    /** Up to 1,000 tasks in one transaction: all or none (see create.ts). */
    createMany(inputs: readonly CreateTaskInput[], actor: string = actors.api, tokenName: string | null = null): Promise<Task[]> {
      return createBatch(inputs, actor, tokenName, true);
    },

    /** The retry backoff of tasks that have none of their own (the monitor's retry uses it too). */
    retryBackoff,

    /** PENDING -> RUNNING for one task, minting a new lease. */
    async start(id: string, workerId: string, tokenName: string | null = null): Promise<TaskLease> {
      valid.taskId(id);
      valid.workerId(workerId);
      const leaseToken = mintLease();
      const kind = (await prisma.task.findUnique({ where: { id }, select: { kind: true } }))?.kind;
      const task = await underKindLocks(kind === undefined ? [] : [kind], async ({ db, changed }) => {
        const now = clock.now();
        const change = await applyTransition(db, transitions.start, { pick: pickById(id) }, { workerId, leaseToken }, { actor: workerId, tokenName }, now);
        if (change) return changed(change);
        // Pending but held back (a delay alone does not hold back a start by id): say by what.
        const holdback = await holdbackOf(db, id);
        const why = holdback && describeHoldback({ ...holdback, runAt: null }, kind!, now);
        const current = await db.task.findUnique({ where: { id }, select: { status: true } });
        if (why && current?.status === TaskStatus.PENDING) {
          throw new TaskwardenError('TASK_NOT_READY', `Cannot start task ${id} yet: it waits for ${why}.`, { status: current.status, waitingFor: why });
        }
        throw await explainRefusal(db, id, transitions.start.verb);
      });
      return { task, leaseToken };
    },

    /**
     * Starts the next claimable task of the given kinds (highest priority, then
     * earliest due, then id), or returns null when none is claimable.
     */
    async claim(workerId: string, kinds?: readonly string[] | null, tokenName: string | null = null): Promise<TaskLease | null> {
      valid.workerId(workerId);
      const only = valid.kinds(kinds);
      if (only?.length === 0) return null;
      const leaseToken = mintLease();
      return underKindLocks(only, async ({ db, changed }) => {
        const now = clock.now();
        const target = { pick: pickNextClaimable(only, now) };
        const change = await applyTransition(db, transitions.start, target, { workerId, leaseToken }, { actor: workerId, tokenName }, now);
        return change && { task: changed(change), leaseToken };
      });
    },

    /**
     * A heartbeat, with progress and/or message when given. Only a change of
     * progress or message counts as progress (and is recorded in the history);
     * a bare heartbeat just proves the worker is alive.
     */
    async reportProgress(
      id: string,
      leaseToken: string,
      report: { progress?: number | null; message?: string | null } = {},
      tokenName: string | null = null,
    ): Promise<Task> {
      return ingest.report(progressRow({ id, leaseToken, ...report }, tokenName));
    },

    /**
     * Many reports at once (at most MAX_BATCH), each fenced by its own lease and
     * answered in input order: a refused one (LEASE_MISMATCH, NOT_FOUND) changes
     * nothing and is never published, and does not stop the others. A bad value
     * anywhere refuses the whole batch before anything is written.
     */
    async reportProgressBatch(reports: readonly ProgressReportInput[], tokenName: string | null = null): Promise<ReportResult[]> {
      if (reports.length > MAX_BATCH) throw badInput('reports', `at most ${MAX_BATCH} reports in one batch, not ${reports.length}`);
      return ingest.reportMany(reports.map((report, i) => progressRow(report, tokenName, `reports[${i}].`)));
    },

    /** RUNNING -> COMPLETED: result, status, progress 100 and completedAt land together or not at all. */
    async complete(id: string, leaseToken: string, result: unknown, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      valid.json(result, 'result', valid.limits.resultBytes);
      return write(transitions.complete, id, { result }, { tokenName }, leaseToken);
    },

    /**
     * RUNNING -> FAILED, by the worker holding the lease. With `retryable`,
     * while attempts remain, RUNNING -> PENDING instead, due again after its
     * retry backoff (the history entry's reason says how long).
     */
    async fail(id: string, leaseToken: string, error: string, tokenName: string | null = null, options: { retryable?: boolean | null } = {}): Promise<Task> {
      valid.taskId(id);
      valid.text(error, 'error', valid.limits.error, { multiline: true });
      if (options.retryable) {
        const current = await prisma.task.findUnique({ where: { id } });
        if (current && current.leaseToken === leaseToken && current.status === TaskStatus.RUNNING && current.attempt < current.maxAttempts) {
          const { runAt, note } = retryDelay(current, retryBackoff, clock.now());
          const reason = `${firstLine(error)}; ${note} (attempt ${current.attempt} of ${current.maxAttempts})`;
          // Its guard re-checks lease and attempts: if either moved since the read, it fails the task as asked, or refuses.
          const requeued = await write(transitions.failRetry, id, { error, runAt }, { tokenName, reason }, leaseToken).catch((refusal: unknown) => {
            if (refusal instanceof TaskwardenError) return null;
            throw refusal;
          });
          if (requeued) return requeued;
        }
      }
      return write(transitions.fail, id, { error }, { tokenName, reason: firstLine(error) }, leaseToken);
    },

    /** The tasks this one waits for. */
    dependenciesOf(id: string): Promise<Task[]> {
      return prisma.task.findMany({ where: { dependants: { some: { taskId: id } } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    },

    /** The tasks that wait for this one. */
    dependantsOf(id: string): Promise<Task[]> {
      return prisma.task.findMany({ where: { dependsOn: { some: { dependsOnId: id } } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
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
      return status === TaskStatus.FAILED ? write(transitions.forceFail, id, { error: reason }, author) : write(transitions.forceCancel, id, {}, author);
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
