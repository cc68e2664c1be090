import { heartbeatIntervalMs, type StuckVerdict } from '../tasks/stuck.js';
import type { Task } from '../tasks/model.js';
import * as valid from '../tasks/validate.js';
import { taskView } from '../tasks/view.js';
import { builder } from './builder.js';
import type { Context } from './context.js';
import { idArg } from './args.js';
import { StuckReasonEnum, TaskStatusEnum } from './enums.js';

/** The verdict this request already reached for the task, or the monitor's own. */
export function verdictOf(task: Task, ctx: Context): StuckVerdict | null {
  if (ctx.verdicts.has(task)) return ctx.verdicts.get(task)!;
  return ctx.services.monitor.verdict(task);
}

/** The task's run time and stuck fields, under the verdict this request sees. */
const viewOf = (task: Task, ctx: Context) => taskView(task, verdictOf(task, ctx), ctx.services.clock.now());

/** Task.events, its history, is added in task-event.ts (where TaskEvent lives), so this file does not import that one. */
export const TaskRef = builder.prismaObject('Task', {
  description: 'A unit of long-running work, such as one backtest. Its lease token is never readable.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    kind: t.exposeString('kind'),
    params: t.expose('params', { type: 'JSON', description: 'The job configuration, e.g. the strategy and its settings.' }),
    status: t.expose('status', { type: TaskStatusEnum }),
    progress: t.exposeFloat('progress', { description: 'From 0 to 100.' }),
    message: t.exposeString('message', { nullable: true, description: 'The current phase, e.g. "saving results".' }),
    attempt: t.exposeInt('attempt', { description: 'How many times it was started (1 on the first run).' }),
    maxAttempts: t.exposeInt('maxAttempts'),
    workerId: t.exposeString('workerId', { nullable: true, description: 'The worker that runs (or last ran) it.' }),
    timeoutMinutes: t.exposeFloat('timeoutMinutes', { nullable: true, description: 'Its own run-time limit (OVERTIME past it).' }),
    heartbeatTimeoutSeconds: t.exposeFloat('heartbeatTimeoutSeconds', {
      nullable: true,
      description: 'Its own NO_HEARTBEAT clock; null when the configured HEARTBEAT_TIMEOUT applies.',
    }),
    stallTimeoutMinutes: t.exposeFloat('stallTimeoutMinutes', {
      nullable: true,
      description: 'Its own NO_PROGRESS clock; null when the configured STALL_TIMEOUT applies.',
    }),
    error: t.exposeString('error', { nullable: true }),
    result: t.expose('result', { type: 'JSON', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true }),
    lastProgressAt: t.expose('lastProgressAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    durationSeconds: t.float({
      nullable: true,
      description: 'Run time of the current (or last) attempt: start to finish, or start to now while running.',
      resolve: (task, _args, ctx) => viewOf(task, ctx).durationSeconds,
    }),
    isStuck: t.boolean({
      description: "Whether it is running but stuck, under its own clocks or the monitor's (or the timeout of the query that listed it).",
      resolve: (task, _args, ctx) => viewOf(task, ctx).isStuck,
    }),
    stuckReason: t.field({ type: StuckReasonEnum, nullable: true, resolve: (task, _args, ctx) => viewOf(task, ctx).stuckReason }),
    stuckSince: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'The last heartbeat (NO_HEARTBEAT), the last progress change (NO_PROGRESS) or the start (OVERTIME).',
      resolve: (task, _args, ctx) => viewOf(task, ctx).stuckSince,
    }),
    stuckForSeconds: t.float({
      nullable: true,
      description: 'Seconds since stuckSince.',
      resolve: (task, _args, ctx) => viewOf(task, ctx).stuckForSeconds,
    }),
  }),
});

export const TaskLeaseRef = builder.objectRef<{ task: Task; leaseToken: string }>('TaskLease').implement({
  description: 'A started task and the lease that fences its worker writes. Keep the token secret.',
  fields: (t) => ({
    task: t.field({ type: TaskRef, resolve: (lease) => lease.task }),
    leaseToken: t.exposeString('leaseToken', {
      description: 'Present it on reportProgress, completeTask and failTask. A stale lease gets LEASE_MISMATCH.',
    }),
    heartbeatIntervalSeconds: t.float({
      description: "How often to heartbeat: a third of the task's heartbeat timeout, so one lost beat is no alarm.",
      resolve: (lease, _args, ctx) => heartbeatIntervalMs(lease.task, ctx.services.monitor.rules()) / 1000,
    }),
  }),
});

const RetryBackoffInput = builder.inputType('RetryBackoffInput', {
  description: 'How long a retry waits: min(maxSeconds, initialSeconds x factor^(attempt-1)), ±10%. Each field left out comes from RETRY_BACKOFF.',
  fields: (t) => ({
    initialSeconds: t.float({ description: 'The wait after the first failed attempt (0 or more).' }),
    factor: t.float({ description: 'Each further attempt waits this many times longer (1 to 100).' }),
    maxSeconds: t.float({ description: 'The longest wait (at least initialSeconds).' }),
  }),
});

export const CreateTaskInput = builder.inputType('CreateTaskInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'At most 200 characters.' }),
    kind: t.string({ description: 'Workers claim tasks by kind. Default "backtest".' }),
    params: t.field({ type: 'JSON', description: 'The job configuration (at most 64 KB of JSON).' }),
    timeoutMinutes: t.float({ description: 'Its own run-time limit; past it the task is stuck (OVERTIME).' }),
    heartbeatTimeoutSeconds: t.float({
      description:
        'Silence longer than this makes it NO_HEARTBEAT (1 to 86400). Default: HEARTBEAT_TIMEOUT. Leases ask its worker to beat three times as often.',
    }),
    stallTimeoutMinutes: t.float({
      description:
        'No change of progress or message for longer than this makes it NO_PROGRESS. Default: STALL_TIMEOUT. Give a long one to a task with slow silent phases.',
    }),
    maxAttempts: t.int({
      description: "How many runs it may have: the monitor's retry action and failTask(retryable: true) requeue it while attempts remain. Default 3.",
    }),
    priority: t.int({ description: 'Higher is claimed first (-1000000 to 1000000). Default 0.' }),
    runAt: t.field({ type: 'DateTime', description: 'Not claimable before this time. Default: at once.' }),
    idempotencyKey: t.string({
      description:
        'Creating again with the same key returns the task that has it (no new task, no event); a different input under it is IDEMPOTENCY_CONFLICT. The key is freed when its task is deleted. At most 200 characters.',
    }),
    dependsOn: t.idList({
      description: 'Claimable only once all these tasks COMPLETED; if one ends FAILED or CANCELLED, this task is cancelled (DEPENDENCY_FAILED).',
    }),
    dependsOnIndex: t.intList({ description: 'In createTasks only: dependencies on other tasks of the same call, by their index in it.' }),
    retryBackoff: t.field({ type: RetryBackoffInput, description: 'Its own retry backoff. Default: RETRY_BACKOFF.' }),
  }),
});

const ProgressReportInput = builder.inputType('ProgressReportInput', {
  description: 'One report of a batch: what reportProgress takes.',
  fields: (t) => ({
    id: t.id({ required: true }),
    leaseToken: t.string({ required: true }),
    progress: t.float(),
    message: t.string(),
  }),
});

const ProgressReportResultRef = builder.objectRef<{ id: string; accepted: boolean; code: string | null }>('ProgressReportResult').implement({
  description: 'What became of one report of a batch.',
  fields: (t) => ({
    id: t.exposeID('id'),
    accepted: t.exposeBoolean('accepted', { description: 'Written (and sent to live subscribers); false: refused, nothing written.' }),
    code: t.exposeString('code', { nullable: true, description: 'Why it was refused: LEASE_MISMATCH (stop working on the task), NOT_FOUND, ...' }),
  }),
});

builder.queryFields((t) => ({
  task: t.prismaField({
    authScopes: { read: true },
    type: 'Task',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_query, _root, args, ctx) => ctx.services.tasks.get(idArg(args.id)),
  }),
  tasks: t.prismaConnection(
    {
      authScopes: { read: true },
      type: 'Task',
      cursor: 'id',
      maxSize: valid.limits.pageSize,
      description: 'Tasks, newest first.',
      args: {
        status: t.arg({ type: [TaskStatusEnum], required: false }),
        kind: t.arg.string(),
        search: t.arg.string({
          description:
            'Only tasks whose name contains this text, ignoring case (at most 200 characters). With it, totalCount counts up to 1000 and stops: 1000 means 1000 or more.',
        }),
      },
      totalCount: (_connection, { status, kind, search }, ctx) => ctx.services.tasks.count({ status, kind, search }),
      resolve: (query, _root, { status, kind, search }, ctx) => ctx.services.tasks.list({ status, kind, search }, query),
    },
    { name: 'TaskConnection', description: 'A page of tasks.' },
    { name: 'TaskEdge' },
  ),
  stuckTasks: t.field({
    authScopes: { read: true },
    type: [TaskRef],
    description:
      "Running tasks that are stuck, longest stuck first: under their own clocks and the monitor's; or, given timeoutMinutes, under that one timeout for everything (nothing from it, or no progress, for longer).",
    args: { timeoutMinutes: t.arg.float() },
    resolve: async (_root, args, ctx) => {
      const override = args.timeoutMinutes == null ? undefined : valid.minutes(args.timeoutMinutes, 'timeoutMinutes');
      const stuck = await ctx.services.tasks.stuck(ctx.services.monitor.rules(override));
      for (const { task, verdict } of stuck) ctx.verdicts.set(task, verdict);
      return stuck.map((s) => s.task);
    },
  }),
}));

builder.mutationFields((t) => ({
  createTask: t.field({
    authScopes: { submit: true },
    type: TaskRef,
    args: { input: t.arg({ type: CreateTaskInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.tasks.create(input, ctx.actor, ctx.tokenName),
  }),
  startTask: t.field({
    authScopes: { work: true },
    type: TaskLeaseRef,
    description: 'PENDING -> RUNNING for this task, with a new lease.',
    args: { id: t.arg.id({ required: true }), workerId: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.tasks.start(idArg(args.id), args.workerId, ctx.tokenName),
  }),
  claimTask: t.field({
    authScopes: { work: true },
    type: TaskLeaseRef,
    nullable: true,
    description:
      'Starts the next claimable task (of these kinds), with a new lease: highest priority, then earliest runAt (or createdAt), then id; never one that is delayed, waits for a dependency, or whose kind is paused or at its limit. Null when none is claimable.',
    args: { workerId: t.arg.string({ required: true }), kinds: t.arg.stringList() },
    resolve: (_root, args, ctx) => ctx.services.tasks.claim(args.workerId, args.kinds, ctx.tokenName),
  }),
  reportProgress: t.field({
    authScopes: { work: true },
    type: TaskRef,
    description: 'A heartbeat from the lease holder, with progress and/or message when they changed. Without progress it is a pure heartbeat.',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      progress: t.arg.float(),
      message: t.arg.string(),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.tasks.reportProgress(idArg(args.id), args.leaseToken, { progress: args.progress, message: args.message }, ctx.tokenName),
  }),
  reportProgressBatch: t.field({
    authScopes: { work: true },
    type: [ProgressReportResultRef],
    description:
      'Many reportProgress at once (at most 1000), e.g. every running task of a worker process: each is fenced by its own lease and answered in input order. A refused one changes nothing and does not stop the others; a bad value anywhere refuses the whole batch (BAD_USER_INPUT) and writes nothing.',
    args: { reports: t.arg({ type: [ProgressReportInput], required: true }) },
    resolve: async (_root, { reports }, ctx) => {
      const results = await ctx.services.tasks.reportProgressBatch(
        reports.map((r) => ({ id: String(r.id), leaseToken: r.leaseToken, progress: r.progress, message: r.message })),
        ctx.tokenName,
      );
      return results.map((result, i) => ({ id: String(reports[i]!.id), accepted: result.accepted, code: result.accepted ? null : String(result.error.code) }));
    },
  }),
  completeTask: t.field({
    authScopes: { work: true },
    type: TaskRef,
    description: 'RUNNING -> COMPLETED by the lease holder: result, status and progress 100 are stored together.',
    args: { id: t.arg.id({ required: true }), leaseToken: t.arg.string({ required: true }), result: t.arg({ type: 'JSON' }) },
    resolve: (_root, args, ctx) => ctx.services.tasks.complete(idArg(args.id), args.leaseToken, args.result, ctx.tokenName),
  }),
  failTask: t.field({
    authScopes: { work: true },
    type: TaskRef,
    description:
      'RUNNING -> FAILED by the lease holder. With retryable: true, while attempts remain (attempt < maxAttempts), RUNNING -> PENDING instead, due again after its retry backoff.',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      error: t.arg.string({ required: true }),
      retryable: t.arg.boolean(),
    },
    resolve: (_root, args, ctx) => ctx.services.tasks.fail(idArg(args.id), args.leaseToken, args.error, ctx.tokenName, { retryable: args.retryable }),
  }),
  releaseTask: t.field({
    authScopes: { work: true },
    type: TaskRef,
    description: 'RUNNING -> PENDING by the lease holder, e.g. a worker shutting down: another worker can claim it.',
    args: { id: t.arg.id({ required: true }), leaseToken: t.arg.string({ required: true }), reason: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.tasks.release(idArg(args.id), args.leaseToken, args.reason, ctx.tokenName),
  }),
  stopTask: t.field({
    authScopes: { operate: true },
    type: TaskRef,
    description: 'PENDING or RUNNING -> CANCELLED. The worker loses its lease.',
    args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.tasks.stop(idArg(args.id), { reason: args.reason, actor: ctx.actor, tokenName: ctx.tokenName }),
  }),
  forceComplete: t.field({
    authScopes: { operate: true },
    type: TaskRef,
    description: 'RUNNING -> CANCELLED or FAILED whatever its worker is doing, for a stuck task.',
    args: {
      id: t.arg.id({ required: true }),
      status: t.arg({ type: TaskStatusEnum, defaultValue: 'CANCELLED', required: true }),
      reason: t.arg.string(),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.tasks.forceComplete(idArg(args.id), { status: args.status, reason: args.reason, actor: ctx.actor, tokenName: ctx.tokenName }),
  }),
  deleteTask: t.field({
    authScopes: { operate: true },
    type: 'ID',
    description: 'Deletes a terminal task (TASK_NOT_TERMINAL otherwise). Its history is kept.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.tasks.delete(idArg(args.id), { actor: ctx.actor, tokenName: ctx.tokenName }),
  }),
}));
