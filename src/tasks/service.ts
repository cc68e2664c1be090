import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { StuckAction } from '../config.js';
import { badInput, TaskwardenError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { AlertService } from '../alerts/service.js';
import type { RecordedAlert } from '../alerts/outbox.js';
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import { actors, TaskEventType, TaskStatus, type Db, type Task, type TaskEvent } from './model.js';
import { deleteTerminalTask, insertTask, pickById, pickOldestPending, updateTask, type UpdateSpec } from './sql/changes.js';
import { readEvents } from './sql/event-log.js';
import { recordChange, type EventSpec, type RecordedChange } from './sql/record-change.js';
import type { EventPosition } from './position.js';
import { describeStuck, findStuck, type StuckRules, type StuckTask, type StuckVerdict } from './stuck.js';
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
}

export interface TaskLease {
  task: Task;
  /** Presented by the worker on every write; only its holder may report, complete or fail the task. */
  leaseToken: string;
}

export interface TaskFilter {
  status?: TaskStatus[] | null;
  kind?: string | null;
  /** A case-insensitive substring of the name (at most 200 characters). */
  search?: string | null;
}

/** Prisma's page arguments, as the GraphQL connection computes them. */
export interface PageArgs {
  take?: number;
  skip?: number;
  cursor?: Prisma.TaskWhereUniqueInput;
}

export interface StuckResolution {
  change: RecordedChange;
  /** What was done: `retry` becomes `fail` when no attempts are left. */
  outcome: StuckAction;
}

export interface TaskServiceDeps {
  prisma: PrismaClient;
  clock: Clock;
  bus: EventBus;
  /** Failures are alerted on in the same transaction as the failure itself. */
  alerts: Pick<AlertService, 'taskFailed' | 'committed'>;
  /** Hears every change this instance made (for metrics). */
  observe?: (change: RecordedChange) => void;
}

export type TaskService = ReturnType<typeof createTaskService>;

/** How long a history read waits for entries that are committed but held behind an older, still running transaction. */
const SETTLE_WAIT_MS = 2000;

/**
 * The task lifecycle. Every write is one compare-and-set statement that also
 * appends the task's history (see sql/record-change.ts); when it loses a race
 * or its guard fails, the caller gets an error saying why, and nothing changed.
 * Changes are published to live subscribers after they commit.
 */
export function createTaskService({ prisma, clock, bus, alerts, observe }: TaskServiceDeps) {
  const publish = (change: RecordedChange) => {
    observe?.(change);
    if (change.event) bus.publish('task:updated', { event: change.event, task: change.event.type === 'DELETED' ? null : change.row });
    return change.row;
  };

  const startSet = (workerId: string, leaseToken: string, now: Date) => Prisma.sql`
    status = 'RUNNING', attempt = t.attempt + 1, "workerId" = ${workerId}, "leaseToken" = ${leaseToken},
    "startedAt" = ${now}, "lastHeartbeatAt" = ${now}, "lastProgressAt" = ${now},
    progress = 0, message = NULL, error = NULL, result = NULL, "completedAt" = NULL, "stuckEpisode" = NULL`;

  const finishSet = (status: TaskStatus, now: Date, extra = Prisma.empty) => Prisma.sql`
    status = ${status}::"TaskStatus", "completedAt" = ${now}, "leaseToken" = NULL ${extra}`;

  // Back to PENDING for another attempt: the lease ends, the next start begins afresh.
  const requeueSet = Prisma.sql`
    status = 'PENDING', "leaseToken" = NULL, "workerId" = NULL, "startedAt" = NULL,
    "lastHeartbeatAt" = NULL, "lastProgressAt" = NULL, progress = 0, message = NULL, "stuckEpisode" = NULL`;

  const holdsLease = (leaseToken: string) => Prisma.sql`t.status = 'RUNNING' AND t."leaseToken" = ${leaseToken}`;
  const inStatus = (statuses: TaskStatus[]) => Prisma.sql`t.status::text = ANY(${statuses})`;

  /** Runs a write on one task; when its guard fails, reads the task to say why. */
  async function write(
    db: Db,
    id: string,
    spec: Omit<UpdateSpec, 'pick'>,
    event: EventSpec,
    refusal: { verb: string; leaseToken?: string },
  ): Promise<RecordedChange> {
    const change = await recordChange(db, updateTask({ pick: pickById(id), ...spec }), event);
    if (change) return change;
    throw await explainRefusal(db, id, refusal);
  }

  async function explainRefusal(db: Db, id: string, { verb, leaseToken }: { verb: string; leaseToken?: string }) {
    const current = await db.task.findUnique({ where: { id }, select: { status: true, leaseToken: true } });
    if (!current) return notFound(id);
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

  /** A write that may fail a task: it and its alerts commit together. */
  async function failing(run: (db: Db) => Promise<RecordedChange>): Promise<Task> {
    let recorded: RecordedAlert[] = [];
    const change = await prisma.$transaction(async (tx) => {
      const made = await run(tx);
      recorded = await alerts.taskFailed(tx, made);
      return made;
    });
    alerts.committed(recorded);
    return publish(change);
  }

  const lease = (change: RecordedChange | null, leaseToken: string): TaskLease | null => change && { task: publish(change), leaseToken };

  return {
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
      const change = await recordChange(prisma, insertTask(task), { type: TaskEventType.CREATED, actor, tokenName, at: task.createdAt });
      return publish(change!);
    },

    /** PENDING -> RUNNING for one task, minting a new lease. */
    async start(id: string, workerId: string, tokenName: string | null = null): Promise<TaskLease> {
      valid.taskId(id);
      valid.workerId(workerId);
      const now = clock.now();
      const leaseToken = mintLease();
      const change = await write(
        prisma,
        id,
        { guard: inStatus([TaskStatus.PENDING]), set: startSet(workerId, leaseToken, now) },
        { type: TaskEventType.STARTED, actor: workerId, tokenName, at: now },
        { verb: 'start' },
      );
      return lease(change, leaseToken)!;
    },

    /** Starts the oldest pending task of the given kinds, or returns null when none is pending. */
    async claim(workerId: string, kinds?: readonly string[] | null, tokenName: string | null = null): Promise<TaskLease | null> {
      valid.workerId(workerId);
      const only = valid.kinds(kinds);
      if (only?.length === 0) return null;
      const now = clock.now();
      const leaseToken = mintLease();
      const change = await recordChange(
        prisma,
        updateTask({ pick: pickOldestPending(only), guard: inStatus([TaskStatus.PENDING]), set: startSet(workerId, leaseToken, now) }),
        { type: TaskEventType.STARTED, actor: workerId, tokenName, at: now },
      );
      return lease(change, leaseToken);
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
      const now = clock.now();
      const change = await write(
        prisma,
        id,
        {
          guard: holdsLease(leaseToken),
          set: Prisma.sql`
            progress = COALESCE(${progress}::float8, t.progress),
            message = COALESCE(${message}, t.message),
            "lastHeartbeatAt" = ${now},
            "lastProgressAt" = CASE
              WHEN (COALESCE(${progress}::float8, t.progress), COALESCE(${message}, t.message)) IS DISTINCT FROM (t.progress, t.message)
              THEN ${now} ELSE t."lastProgressAt" END`,
          record: Prisma.sql`(t.progress, t.message) IS DISTINCT FROM (picked.progress, picked.message)`,
        },
        { type: TaskEventType.PROGRESS, tokenName, at: now },
        { verb: 'report progress on', leaseToken },
      );
      return publish(change);
    },

    /** RUNNING -> COMPLETED: result, status, progress 100 and completedAt land together or not at all. */
    async complete(id: string, leaseToken: string, result: unknown, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      valid.json(result, 'result', valid.limits.resultBytes);
      const now = clock.now();
      const change = await write(
        prisma,
        id,
        {
          guard: holdsLease(leaseToken),
          set: finishSet(
            TaskStatus.COMPLETED,
            now,
            Prisma.sql`, progress = 100, result = ${JSON.stringify(result ?? null)}::jsonb, "lastHeartbeatAt" = ${now}`,
          ),
        },
        { type: TaskEventType.COMPLETED, tokenName, at: now },
        { verb: 'complete', leaseToken },
      );
      return publish(change);
    },

    /** RUNNING -> FAILED, by the worker holding the lease. */
    async fail(id: string, leaseToken: string, error: string, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      valid.text(error, 'error', valid.limits.error, { multiline: true });
      const now = clock.now();
      return failing((db) =>
        write(
          db,
          id,
          { guard: holdsLease(leaseToken), set: finishSet(TaskStatus.FAILED, now, Prisma.sql`, error = ${error}, "lastHeartbeatAt" = ${now}`) },
          { type: TaskEventType.FAILED, tokenName, reason: firstLine(error), at: now },
          { verb: 'fail', leaseToken },
        ),
      );
    },

    /**
     * RUNNING -> PENDING by the lease holder: a worker that is shutting down
     * hands its task back for another worker instead of leaving it to go stuck.
     */
    async release(id: string, leaseToken: string, reason?: string | null, tokenName: string | null = null): Promise<Task> {
      valid.taskId(id);
      const why = valid.optionalText(reason, 'reason', valid.limits.reason, { multiline: true }) ?? 'released by its worker';
      const now = clock.now();
      const change = await write(
        prisma,
        id,
        { guard: holdsLease(leaseToken), set: requeueSet },
        { type: TaskEventType.REQUEUED, tokenName, reason: why, at: now },
        { verb: 'release', leaseToken },
      );
      return publish(change);
    },

    /** PENDING or RUNNING -> CANCELLED. The worker's lease ends with it. */
    async stop(id: string, options: { reason?: string | null; actor?: string; tokenName?: string | null } = {}): Promise<Task> {
      valid.taskId(id);
      const reason = valid.optionalText(options.reason, 'reason', valid.limits.reason, { multiline: true }) ?? 'stopped';
      const now = clock.now();
      const change = await write(
        prisma,
        id,
        { guard: inStatus([TaskStatus.PENDING, TaskStatus.RUNNING]), set: finishSet(TaskStatus.CANCELLED, now) },
        { type: TaskEventType.CANCELLED, actor: options.actor ?? actors.operator, tokenName: options.tokenName, reason, at: now },
        { verb: 'stop' },
      );
      return publish(change);
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
      const now = clock.now();
      const force = (db: Db) =>
        write(
          db,
          id,
          {
            guard: inStatus([TaskStatus.RUNNING]),
            set: finishSet(status, now, status === TaskStatus.FAILED ? Prisma.sql`, error = ${reason}` : Prisma.empty),
          },
          { type: status, actor: options.actor ?? actors.operator, tokenName: options.tokenName, reason, at: now },
          { verb: 'force-complete' },
        );
      return status === TaskStatus.FAILED ? failing(force) : publish(await force(prisma));
    },

    /** Deletes a terminal task. Its history stays, ending with a DELETED entry. */
    async delete(id: string, options: { actor?: string; tokenName?: string | null } = {}): Promise<string> {
      valid.taskId(id);
      const now = clock.now();
      const change = await recordChange(
        prisma,
        deleteTerminalTask(id),
        { type: TaskEventType.DELETED, actor: options.actor ?? actors.operator, tokenName: options.tokenName, at: now },
        { deletes: true },
      );
      if (change) {
        publish(change);
        return id;
      }
      const current = await prisma.task.findUnique({ where: { id }, select: { status: true } });
      if (!current) throw notFound(id);
      throw new TaskwardenError(
        'TASK_NOT_TERMINAL',
        `Task ${id} is ${current.status}: stop or force-complete it first, then delete it.`,
        { status: current.status },
      );
    },

    async get(id: string): Promise<Task | null> {
      valid.taskId(id);
      return prisma.task.findUnique({ where: { id } });
    },

    async require(id: string): Promise<Task> {
      const task = await prisma.task.findUnique({ where: { id: valid.taskId(id) } });
      if (!task) throw notFound(id);
      return task;
    },

    /** Newest first. */
    list(filter: TaskFilter, page: PageArgs = {}): Promise<Task[]> {
      return prisma.task.findMany({ ...page, where: taskWhere(filter), orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    },

    count(filter: TaskFilter): Promise<number> {
      return prisma.task.count({ where: taskWhere(filter) });
    },

    /**
     * A task's history (or everyone's) in the order every stream delivers it,
     * after a position. An entry committed but not settled yet (an older
     * transaction still runs) is waited for briefly rather than skipped, so the
     * last entry returned is a cursor that misses nothing.
     */
    async history(filter: {
      taskId?: string | null;
      kinds?: readonly string[] | null;
      types?: readonly TaskEventType[] | null;
      after?: EventPosition | null;
      limit?: number;
    }): Promise<TaskEvent[]> {
      const range = {
        taskId: filter.taskId ? valid.taskId(filter.taskId, 'taskId') : undefined,
        kinds: valid.kinds(filter.kinds),
        types: filter.types ?? undefined,
        after: filter.after ?? undefined,
        limit: filter.limit ?? 500,
      };
      const deadline = Date.now() + SETTLE_WAIT_MS;
      for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
        const page = await readEvents(prisma, range);
        if (!page.unsettled || page.events.length === range.limit || Date.now() >= deadline) return page.events;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    },

    /** The id of the newest history entry of a task, so live streams know where the snapshot stands. */
    async lastEventId(taskId: string): Promise<bigint | null> {
      const last = await prisma.taskEvent.findFirst({ where: { taskId }, orderBy: { id: 'desc' }, select: { id: true } });
      return last?.id ?? null;
    },

    /** Running tasks that are stuck under these rules, longest stuck first. */
    async stuck(rules: StuckRules): Promise<StuckTask[]> {
      const found = findStuck(await this.running(), clock.now(), rules);
      return found.sort((a, b) => b.verdict.stuckForMs - a.verdict.stuckForMs);
    },

    /** Running tasks with what stuck detection needs. A sweep reads only these rows (index on status). */
    running(db: Db = prisma): Promise<Task[]> {
      return db.task.findMany({ where: { status: TaskStatus.RUNNING }, orderBy: { startedAt: 'asc' } });
    },

    /**
     * The monitor's transition for a stuck task, run inside the sweep's
     * transaction (`db`); the caller publishes the change after commit. It is
     * guarded on the task still being in the episode the sweep saw (same
     * lease, no heartbeat or progress since), so a worker that wakes up in
     * between keeps its task. Returns null when the task moved on, or when
     * `none` already reported this episode.
     */
    async resolveStuck(
      db: Db,
      task: Task,
      verdict: StuckVerdict,
      action: StuckAction,
      actor: string,
      tokenName: string | null = null,
    ): Promise<StuckResolution | null> {
      if (!task.leaseToken) return null;
      const now = clock.now();
      const sameEpisode = {
        NO_HEARTBEAT: Prisma.sql`t."lastHeartbeatAt" IS NOT DISTINCT FROM ${task.lastHeartbeatAt}`,
        NO_PROGRESS: Prisma.sql`t."lastProgressAt" IS NOT DISTINCT FROM ${task.lastProgressAt}`,
        OVERTIME: Prisma.sql`true`,
      }[verdict.reason];
      let guard = Prisma.sql`${holdsLease(task.leaseToken)} AND ${sameEpisode}`;
      const why = `stuck: ${describeStuck(verdict)}`;
      const outcome: StuckAction = action === 'retry' && task.attempt >= task.maxAttempts ? 'fail' : action;
      let set: Prisma.Sql;
      let type: TaskEventType;
      switch (outcome) {
        case 'none':
          guard = Prisma.sql`${guard} AND t."stuckEpisode" IS DISTINCT FROM ${verdict.episode}`;
          set = Prisma.sql`"stuckEpisode" = ${verdict.episode}`;
          type = TaskEventType.STUCK;
          break;
        case 'cancel':
          set = finishSet(TaskStatus.CANCELLED, now);
          type = TaskEventType.CANCELLED;
          break;
        case 'fail': {
          const error = action === 'retry' ? `${why}; no attempts left (${task.attempt} of ${task.maxAttempts})` : why;
          set = finishSet(TaskStatus.FAILED, now, Prisma.sql`, error = ${error}`);
          type = TaskEventType.FAILED;
          break;
        }
        case 'retry':
          set = requeueSet;
          type = TaskEventType.REQUEUED;
          break;
      }
      const change = await recordChange(db, updateTask({ pick: pickById(task.id), guard, set }), {
        type,
        actor,
        tokenName,
        reason: verdict.reason,
        at: now,
      });
      return change && { change, outcome };
    },

    /** Publishes a change made inside a transaction, once that transaction committed. */
    publish,
  };
}

export function mintLease(): string {
  return randomBytes(24).toString('base64url');
}

export function notFound(id: string) {
  return new TaskwardenError('NOT_FOUND', `Task ${id} does not exist.`, { id });
}

function taskWhere(filter: TaskFilter): Prisma.TaskWhereInput {
  const search = valid.optionalText(filter.search, 'search', valid.limits.name);
  return {
    ...(filter.status?.length ? { status: { in: filter.status } } : {}),
    ...(filter.kind ? { kind: filter.kind } : {}),
    // Prisma passes LIKE wildcards through: escaped, `%` and `_` match only themselves.
    ...(search ? { name: { contains: search.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' } } : {}),
  };
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0]!.trim();
  return line.length > valid.limits.reason ? `${line.slice(0, valid.limits.reason - 1)}…` : line;
}

