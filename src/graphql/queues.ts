import type { KindQueueFigures } from '../tasks/queues.js';
import { builder } from './builder.js';
import { CreateTaskInput, TaskRef } from './task.js';

// Scheduling: per-kind queues (limit, pause, figures), batches, and what a task waits for.

export const KindQueueRef = builder.objectRef<KindQueueFigures>('KindQueue').implement({
  description: "One kind's queue: what waits, what runs, and its settings.",
  fields: (t) => ({
    kind: t.exposeString('kind'),
    pending: t.exposeInt('pending', { description: 'Pending tasks that are due and whose dependencies completed (ready, unless the kind is paused or full).' }),
    delayed: t.exposeInt('delayed', { description: 'Pending tasks whose runAt is still ahead (a retry waiting out its backoff, or a scheduled run).' }),
    blocked: t.exposeInt('blocked', { description: 'Pending tasks waiting for a dependency to complete.' }),
    running: t.exposeInt('running'),
    limit: t.int({ nullable: true, description: 'At most this many run at once; null: unlimited.', resolve: (q) => q.maxRunning }),
    paused: t.exposeBoolean('paused', { description: 'Claims of this kind get nothing while it is paused; running tasks go on.' }),
    oldestReadyAgeSeconds: t.exposeFloat('oldestReadyAgeSeconds', { description: 'How long the longest-waiting ready task has been due (0 when none is).' }),
  }),
});

builder.prismaObjectFields('Task', (t) => ({
  priority: t.exposeInt('priority', { description: 'Higher is claimed first.' }),
  runAt: t.expose('runAt', { type: 'DateTime', nullable: true, description: 'Not claimable before; a retry moves it by its backoff. Null: at once.' }),
  idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
  dependsOn: t.field({
    type: [TaskRef],
    description: 'The tasks that must COMPLETE before it may run.',
    resolve: (task, _args, ctx) => ctx.services.tasks.dependenciesOf(task.id),
  }),
  dependants: t.field({
    type: [TaskRef],
    description: 'The tasks that wait for it.',
    resolve: (task, _args, ctx) => ctx.services.tasks.dependantsOf(task.id),
  }),
  waitingFor: t.string({
    nullable: true,
    description:
      'Why a pending task is not claimable now, first of: "dependency: …", "delay: until …", "pause: …", "limit: …". Null when it is (or when it is not pending).',
    resolve: (task, _args, ctx) => ctx.services.queues.waitingFor(task),
  }),
}));

builder.queryFields((t) => ({
  queues: t.field({
    authScopes: { read: true },
    type: [KindQueueRef],
    description: 'Every kind with pending or running tasks, or with a limit or pause set.',
    resolve: (_root, _args, ctx) => ctx.services.queues.list(),
  }),
}));

builder.mutationFields((t) => ({
  createTasks: t.field({
    authScopes: { submit: true },
    type: [TaskRef],
    description: 'Up to 1,000 tasks in one transaction: all or none. dependsOnIndex points at tasks of the same call; a cycle is DEPENDENCY_CYCLE.',
    args: { inputs: t.arg({ type: [CreateTaskInput], required: true }) },
    resolve: (_root, { inputs }, ctx) => ctx.services.tasks.createMany(inputs.map(fromGraphql), ctx.actor, ctx.tokenName),
  }),
  setKindLimit: t.field({
    authScopes: { operate: true },
    type: KindQueueRef,
    description: 'At most maxRunning tasks of this kind run at once, across every instance (null: unlimited). Running tasks are not touched.',
    args: { kind: t.arg.string({ required: true }), maxRunning: t.arg.int() },
    resolve: (_root, args, ctx) => ctx.services.queues.setLimit(args.kind, args.maxRunning ?? null),
  }),
  pauseKind: t.field({
    authScopes: { operate: true },
    type: KindQueueRef,
    description: 'Claims of this kind get nothing until resumeKind. Running tasks are not touched.',
    args: { kind: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.queues.pause(args.kind),
  }),
  resumeKind: t.field({
    authScopes: { operate: true },
    type: KindQueueRef,
    args: { kind: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.queues.resume(args.kind),
  }),
}));

/** GraphQL IDs may arrive as numbers; task ids are strings. */
export function fromGraphql<T extends { dependsOn?: readonly (string | number)[] | null }>(input: T) {
  return { ...input, dependsOn: input.dependsOn?.map(String) };
}
