import type { StuckAlert } from '../events.js';
import { fixedTasks, type SweepReport } from '../monitor/sweep.js';
import { builder } from './builder.js';
import type { Context } from './context.js';
import { StuckActionEnum, StuckReasonEnum } from './enums.js';
import { cleanupDefaults } from '../monitor/monitor.js';
import * as valid from '../tasks/validate.js';
import { TaskRef } from './task.js';

type MonitorShape = ReturnType<Context['services']['monitor']['status']> & {
  lastSweep: Awaited<ReturnType<Context['services']['monitor']['lastSweep']>>;
  lastDetection: Awaited<ReturnType<Context['services']['monitor']['lastDetection']>>;
};

const MonitorStatusRef = builder.objectRef<MonitorShape>('MonitorStatus').implement({
  description: "The stuck-task monitor: its settings, this instance's schedule, and the newest sweep of any instance.",
  fields: (t) => ({
    enabled: t.exposeBoolean('enabled'),
    running: t.exposeBoolean('running', { description: "Whether this instance's sweep timer is scheduled." }),
    intervalSeconds: t.float({ resolve: (m) => m.intervalMs / 1000 }),
    heartbeatTimeoutSeconds: t.float({
      description: 'Silence longer than this is NO_HEARTBEAT (HEARTBEAT_TIMEOUT), unless a task has its own.',
      resolve: (m) => m.heartbeatTimeoutMs / 1000,
    }),
    stallTimeoutMinutes: t.float({
      description: 'No change of progress or message for longer than this is NO_PROGRESS (STALL_TIMEOUT), unless a task has its own.',
      resolve: (m) => m.stallTimeoutMs / 60_000,
    }),
    timeoutMinutes: t.float({ deprecationReason: 'Use stallTimeoutMinutes and heartbeatTimeoutSeconds.', resolve: (m) => m.stallTimeoutMs / 60_000 }),
    action: t.expose('action', { type: StuckActionEnum }),
    nextSweepAt: t.expose('nextSweepAt', { type: 'DateTime', nullable: true }),
    graceUntil: t.expose('graceUntil', {
      type: 'DateTime',
      nullable: true,
      description: 'After this instance started or its database came back, no task is NO_HEARTBEAT before this moment (null once past).',
    }),
    lastDetectionDelaySeconds: t.float({
      nullable: true,
      description: 'How late the newest detection of a stuck task was: found at, minus the moment it became stuck (the latest in that sweep).',
      resolve: (m) => m.lastDetection?.detectionDelaySeconds,
    }),
    lastSweepAt: t.field({ type: 'DateTime', nullable: true, resolve: (m) => m.lastSweep?.startedAt }),
    lastSweepDurationMs: t.float({
      nullable: true,
      resolve: (m) => (m.lastSweep ? m.lastSweep.finishedAt.getTime() - m.lastSweep.startedAt.getTime() : null),
    }),
    lastSweepScanned: t.int({ nullable: true, resolve: (m) => m.lastSweep?.scanned }),
    lastSweepFound: t.int({ nullable: true, resolve: (m) => m.lastSweep?.found }),
    lastSweepFixed: t.int({ nullable: true, resolve: (m) => m.lastSweep?.fixed }),
    consecutiveFailures: t.exposeInt('consecutiveFailures', { description: 'Sweeps in a row that failed on this instance.' }),
    lastError: t.exposeString('lastError', { nullable: true }),
  }),
});

/** Lists the found tasks with the verdict this sweep reached (its timeout may differ from the monitor's). */
function foundTasks(report: SweepReport, _args: unknown, ctx: Context) {
  for (const { task, verdict } of report.found) ctx.verdicts.set(task, verdict);
  return report.found.map((f) => f.task);
}

const overrideDescription = "The one timeout that replaced every clock; null when each task was judged by its own clocks or the monitor's.";
const overrideMinutes = (report: SweepReport) => (report.rules.overrideMs === undefined ? null : report.rules.overrideMs / 60_000);

const SweepReportRef = builder.objectRef<SweepReport>('SweepReport').implement({
  description: 'What one monitor sweep found and did.',
  fields: (t) => ({
    ran: t.exposeBoolean('ran', { description: 'False when another instance held the sweep lock, so this one did nothing.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime' }),
    action: t.expose('action', { type: StuckActionEnum }),
    timeoutMinutes: t.float({ nullable: true, description: overrideDescription, resolve: overrideMinutes }),
    scanned: t.exposeInt('scanned', { description: 'Running tasks examined.' }),
    found: t.field({ type: [TaskRef], resolve: foundTasks }),
    fixed: t.field({ type: [TaskRef], description: 'Tasks the action changed, as it left them.', resolve: fixedTasks }),
    alerted: t.int({ description: 'Stuck alerts published (with action NONE: new stuck episodes).', resolve: (r) => r.alerted }),
  }),
});

const CleanupReportRef = builder.objectRef<SweepReport>('CleanupReport').implement({
  description: 'What cleanupStuck found and, with autoFix, fixed.',
  fields: (t) => ({
    autoFix: t.boolean({ resolve: (r) => !r.dryRun }),
    action: t.expose('action', { type: StuckActionEnum }),
    timeoutMinutes: t.float({ nullable: true, description: overrideDescription, resolve: overrideMinutes }),
    found: t.field({ type: [TaskRef], resolve: foundTasks }),
    fixed: t.field({ type: [TaskRef], resolve: fixedTasks }),
  }),
});

const StuckTaskAlertRef = builder.objectRef<StuckAlert>('StuckTaskAlert').implement({
  description: 'A stuck task that was found and handled; sent once per stuck episode.',
  fields: (t) => ({
    task: t.field({ type: TaskRef, description: 'The task after the action.', resolve: (a) => a.task }),
    reason: t.expose('reason', { type: StuckReasonEnum }),
    stuckSince: t.expose('stuckSince', { type: 'DateTime' }),
    stuckForSeconds: t.exposeFloat('stuckForSeconds'),
    detectedAt: t.expose('detectedAt', { type: 'DateTime' }),
    actionTaken: t.expose('actionTaken', { type: StuckActionEnum }),
    actor: t.exposeString('actor', { description: '"monitor", or who ran the cleanup.' }),
  }),
});

builder.queryField('monitor', (t) =>
  t.field({
    authScopes: { read: true },
    type: MonitorStatusRef,
    resolve: async (_root, _args, ctx) => {
      const { monitor } = ctx.services;
      const [lastSweep, lastDetection] = await Promise.all([monitor.lastSweep(), monitor.lastDetection()]);
      return { ...monitor.status(), lastSweep, lastDetection };
    },
  }),
);

builder.mutationFields((t) => ({
  cleanupStuck: t.field({
    authScopes: { operate: true },
    type: CleanupReportRef,
    description:
      "Finds stuck tasks (under their own clocks and the monitor's; or, given timeoutMinutes, under that one timeout for everything); with autoFix, applies the action to them (and alerts).",
    args: {
      timeoutMinutes: t.arg.float(),
      autoFix: t.arg.boolean({ defaultValue: cleanupDefaults.autoFix, required: true }),
      action: t.arg({ type: StuckActionEnum, defaultValue: cleanupDefaults.action, required: true }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.monitor.cleanup({
        timeoutMs: args.timeoutMinutes == null ? undefined : valid.minutes(args.timeoutMinutes, 'timeoutMinutes'),
        autoFix: args.autoFix,
        action: args.action,
        actor: ctx.actor,
        tokenName: ctx.tokenName,
      }),
  }),
  runMonitorSweep: t.field({
    authScopes: { operate: true },
    type: SweepReportRef,
    description: "Runs a monitor sweep now, with the monitor's settings.",
    resolve: (_root, _args, ctx) => ctx.services.monitor.sweepNow(),
  }),
}));

builder.subscriptionField('stuckTaskDetected', (t) =>
  t.field({
    authScopes: { read: true },
    type: StuckTaskAlertRef,
    subscribe: (_root, _args, ctx) => ctx.live(ctx.services.live.stuckAlerts()),
    resolve: (alert) => alert,
  }),
);
