import type { Logger } from 'pino';
import type { AlertService } from '../alerts/service.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { actors } from '../tasks/model.js';
import { detectStuck, type StuckAction, type StuckInput, type StuckRules, type StuckVerdict } from '../tasks/stuck.js';
import { sweep, type SweepDeps, type SweepOptions, type SweepReport, type SweepTrigger } from './sweep.js';

/** The monitor as configured (MONITOR_*, HEARTBEAT_TIMEOUT, STALL_TIMEOUT). */
export interface MonitorSettings {
  enabled: boolean;
  /** Time between sweeps, in milliseconds (jittered by up to 10%). */
  intervalMs: number;
  /** Silence longer than this makes a running task NO_HEARTBEAT, in milliseconds (a task may set its own). */
  heartbeatTimeoutMs: number;
  /** No change of progress or message for longer than this makes it NO_PROGRESS, in milliseconds (a task may set its own). */
  stallTimeoutMs: number;
  action: StuckAction;
}

export interface MonitorStatus {
  enabled: boolean;
  /** True while this instance's loop is scheduled. */
  running: boolean;
  intervalMs: number;
  heartbeatTimeoutMs: number;
  stallTimeoutMs: number;
  action: MonitorSettings['action'];
  nextSweepAt: Date | null;
  /**
   * Until when no task is NO_HEARTBEAT for silence this instance could not have heard (after its start,
   * or after its database came back); null once past. Tasks with a longer heartbeat timeout wait longer.
   */
  graceUntil: Date | null;
  /** Sweeps in a row that failed on this instance (for example, database unreachable). */
  consecutiveFailures: number;
  lastError: string | null;
}

export type Monitor = ReturnType<typeof createMonitor>;

/** What an operator's stuck query or cleanup does unless told otherwise: the seed's `timeout_minutes=30`, a dry run, cancel. */
export const cleanupDefaults = { timeoutMinutes: 30, autoFix: false, action: 'cancel' } as const satisfies {
  timeoutMinutes: number;
  autoFix: boolean;
  action: StuckAction;
};

/**
 * The in-process stuck-task monitor: a jittered, self-rescheduling timer that
 * runs one sweep at a time. A failed sweep is logged and retried at the next
 * tick; it never takes the process down. Across instances, the sweep lock
 * (see sweep.ts) lets one sweep at a time.
 */
export function createMonitor(
  deps: SweepDeps & { prisma: PrismaClient; alerts: AlertService; settings: MonitorSettings; log: Logger; onSweep?: (report: SweepReport) => void },
) {
  const { settings, log, clock } = deps;
  let hearingSince = clock.now();
  let timer: NodeJS.Timeout | undefined;
  let nextSweepAt: Date | null = null;
  let scheduled = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  let consecutiveFailures = 0;
  let failingSince: Date | undefined;
  let lastError: string | null = null;

  /** Sweeps queue behind each other in this process, so none overlaps another. */
  function queue(options: SweepOptions): Promise<SweepReport> {
    // Every sweep that ends is observed (metrics), cleanups included.
    const run = inFlight.then(() => sweep(deps, options)).then((report) => (deps.onSweep?.(report), report));
    inFlight = run.catch(() => {});
    return run;
  }

  /**
   * The clocks as configured, with this instance's grace; or an operator's timeout for one call,
   * without it. The grace keeps the monitor from acting on silence the server itself caused (it was
   * down, or just started); an operator who names a timeout asks about the silence on record, as
   * the seed's `stuck?timeout_minutes=` did, and a task silent for hours is shown as such.
   */
  function rules(overrideMs?: number, since = hearingSince): StuckRules {
    return {
      heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
      stallTimeoutMs: settings.stallTimeoutMs,
      overrideMs,
      hearingSince: overrideMs === undefined ? since : undefined,
    };
  }

  function runSweep(trigger: Exclude<SweepTrigger, 'cleanup'>): Promise<SweepReport> {
    // After failed sweeps the database may have been out, and workers' heartbeats with it: the first
    // sweep that gets through starts the grace again, and is itself judged under it.
    const recoveredAt = consecutiveFailures > 0 ? clock.now() : undefined;
    return queue({ rules: rules(undefined, recoveredAt ?? hearingSince), action: settings.action, actor: actors.monitor, trigger }).then(
      (report) => {
        if (recoveredAt) {
          hearingSince = recoveredAt;
          log.info({ graceUntil: new Date(recoveredAt.getTime() + settings.heartbeatTimeoutMs) }, 'database reachable again; silence is counted from now');
        }
        consecutiveFailures = 0;
        failingSince = undefined;
        lastError = null;
        void deps.alerts.flushUnrecorded().catch(() => {});
        if (report.ran && report.found.length > 0) {
          log.warn(
            { scanned: report.scanned, found: report.found.length, handled: report.handled.length, action: report.action },
            'monitor sweep found stuck tasks',
          );
        } else {
          log.debug({ scanned: report.scanned, ran: report.ran }, 'monitor sweep');
        }
        return report;
      },
      (error: unknown) => {
        consecutiveFailures += 1;
        failingSince ??= clock.now();
        lastError = error instanceof Error ? error.message : String(error);
        log.error({ err: error, consecutiveFailures }, 'monitor sweep failed; retrying at the next tick');
        if (consecutiveFailures === deps.alerts.settings.sweepFailures) {
          void deps.alerts.monitorFailing(consecutiveFailures, lastError, failingSince);
        }
        throw error;
      },
    );
  }

  function schedule() {
    if (!scheduled) return;
    // ±10% jitter keeps instances that started together from sweeping in lockstep.
    const delay = Math.round(settings.intervalMs * (0.9 + Math.random() * 0.2));
    nextSweepAt = new Date(Date.now() + delay);
    timer = setTimeout(() => {
      timer = undefined;
      nextSweepAt = null;
      runSweep('schedule')
        .catch(() => {})
        .finally(schedule);
    }, delay);
    timer.unref?.();
  }

  return {
    start() {
      if (scheduled || !settings.enabled) return;
      scheduled = true;
      log.debug(
        { intervalMs: settings.intervalMs, heartbeatTimeoutMs: settings.heartbeatTimeoutMs, stallTimeoutMs: settings.stallTimeoutMs, action: settings.action },
        'monitor started',
      );
      schedule();
    },
    /** Stops the timer and waits for a sweep in flight. */
    async stop() {
      scheduled = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      nextSweepAt = null;
      await inFlight;
    },
    /** Runs a sweep now with the monitor's settings (`runMonitorSweep`). */
    sweepNow: () => runSweep('manual'),
    /**
     * An operator's sweep with their own action and, when given, their own timeout for every clock
     * (`cleanupStuck`). Without `autoFix` it only reports what it would fix. Recorded as done by `actor` (default "operator").
     */
    cleanup({
      timeoutMs,
      autoFix,
      action,
      actor,
      tokenName,
    }: {
      timeoutMs?: number;
      autoFix: boolean;
      action: StuckAction;
      actor?: string;
      tokenName?: string | null;
    }): Promise<SweepReport> {
      return queue({ rules: rules(timeoutMs), action, actor: actor ?? actors.operator, tokenName, trigger: 'cleanup', dryRun: !autoFix });
    },
    rules,
    /** Whether a task is stuck now under the monitor's clocks and grace (what a task says of itself outside a stuck query). */
    verdict: (task: StuckInput): StuckVerdict | null => detectStuck(task, deps.clock.now(), rules()),
    /** The newest sweep any instance ran. */
    lastSweep: () => deps.prisma.monitorSweep.findFirst({ orderBy: { startedAt: 'desc' } }),
    /** The newest sweep of any instance that found a task newly stuck. */
    lastDetection: () => deps.prisma.monitorSweep.findFirst({ where: { detectionDelaySeconds: { not: null } }, orderBy: { startedAt: 'desc' } }),
    status(): MonitorStatus {
      const graceUntil = new Date(hearingSince.getTime() + settings.heartbeatTimeoutMs);
      return {
        enabled: settings.enabled,
        running: scheduled,
        intervalMs: settings.intervalMs,
        heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
        stallTimeoutMs: settings.stallTimeoutMs,
        action: settings.action,
        nextSweepAt,
        graceUntil: graceUntil > clock.now() ? graceUntil : null,
        consecutiveFailures,
        lastError,
      };
    },
    settings,
  };
}
