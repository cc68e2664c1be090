import type { KindStats, OutcomeBucket, TaskStats } from '../tasks/stats.js';
import { badInput } from '../errors.js';
import { builder } from './builder.js';
import { TaskRef } from './task.js';

const countFields = {
  total: 'All tasks.',
  pending: 'Waiting to be started.',
  running: 'Started and not finished.',
  completed: 'Finished with a result.',
  failed: 'Finished with an error.',
  cancelled: 'Stopped, force-completed, or cancelled by the monitor.',
} as const;

const KindStatsRef = builder.objectRef<KindStats>('KindStats').implement({
  description: 'Counts for one kind of task.',
  fields: (t) => ({
    kind: t.exposeString('kind'),
    ...Object.fromEntries(Object.entries(countFields).map(([name, description]) => [name, t.exposeInt(name as keyof typeof countFields, { description })])),
    successRate: t.exposeFloat('successRate', { nullable: true, description: 'completed / (completed + failed + cancelled).' }),
  }),
});

const TaskStatsRef = builder.objectRef<TaskStats>('TaskStats').implement({
  description: 'Counts and timings over tasks created since `since` (all tasks when it is null).',
  fields: (t) => ({
    since: t.expose('since', { type: 'DateTime', nullable: true }),
    ...Object.fromEntries(Object.entries(countFields).map(([name, description]) => [name, t.exposeInt(name as keyof typeof countFields, { description })])),
    stuck: t.exposeInt('stuck', { description: "Running tasks that are stuck under the monitor's timeout." }),
    successRate: t.exposeFloat('successRate', {
      nullable: true,
      description: 'completed / (completed + failed + cancelled); null before anything finished.',
    }),
    averageDurationSeconds: t.exposeFloat('averageDurationSeconds', { nullable: true, description: 'Mean start-to-finish time of completed tasks.' }),
    oldestRunning: t.field({ type: TaskRef, nullable: true, description: 'The running task that started first.', resolve: (s) => s.oldestRunning }),
    byKind: t.field({ type: [KindStatsRef], resolve: (s) => s.byKind }),
  }),
});

const OutcomeBucketRef = builder.objectRef<OutcomeBucket>('OutcomeBucket').implement({
  description: 'Tasks that finished within one time bucket.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
  }),
});

const MAX_BUCKETS = 1000;

builder.queryFields((t) => ({
  taskStats: t.field({
    authScopes: { read: true },
    type: TaskStatsRef,
    args: { since: t.arg({ type: 'DateTime' }) },
    resolve: (_root, args, ctx) => ctx.services.stats.taskStats(args.since),
  }),
  taskOutcomes: t.field({
    authScopes: { read: true },
    type: [OutcomeBucketRef],
    description: 'Finished tasks per bucket, oldest first: by default per hour over the last 24 hours.',
    args: {
      since: t.arg({ type: 'DateTime', description: 'Default: 24 hours ago.' }),
      bucketMinutes: t.arg.float({ defaultValue: 60, required: true }),
    },
    resolve: (_root, args, ctx) => {
      const now = ctx.services.clock.now();
      const since = args.since ?? new Date(now.getTime() - 24 * 3600_000);
      if (!(args.bucketMinutes > 0) || !Number.isFinite(args.bucketMinutes)) throw badInput('bucketMinutes', 'must be a positive number');
      if (since >= now) throw badInput('since', 'must be in the past');
      if ((now.getTime() - since.getTime()) / (args.bucketMinutes * 60_000) > MAX_BUCKETS) {
        throw badInput('bucketMinutes', `too small for this range: at most ${MAX_BUCKETS} buckets`);
      }
      return ctx.services.stats.outcomes(since, args.bucketMinutes * 60);
    },
  }),
}));
