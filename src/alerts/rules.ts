import ms from 'ms';
import type { Task, TaskEvent } from '../tasks/model.js';
import { stuckActionOutcome } from '../tasks/lifecycle.js';
import { describeStuck, type StuckAction, type StuckVerdict } from '../tasks/stuck.js';
import type { AlertRule } from './settings.js';

/** What a receiver gets (the JSON body, or the text of a Slack/Feishu message). */
export interface AlertPayload {
  /** Idempotency key: the same alert delivered twice has the same id. */
  id: string;
  rule: AlertRule;
  severity: 'warning' | 'critical';
  summary: string;
  occurredAt: string;
  task: { id: string; name: string; kind: string; status: string; progress: number; message: string | null; attempt: number; workerId: string | null } | null;
  details: Record<string, unknown>;
  source: 'taskwarden';
}

export interface AlertDraft {
  key: string;
  rule: AlertRule;
  taskId: string | null;
  kind: string | null;
  payload: AlertPayload;
}

const taskSummary = (task: Task): AlertPayload['task'] => ({
  id: task.id,
  name: task.name,
  kind: task.kind,
  status: task.status,
  progress: task.progress,
  message: task.message,
  attempt: task.attempt,
  workerId: task.workerId,
});

const draft = (
  key: string,
  rule: AlertRule,
  at: Date,
  task: Task | null,
  fields: Pick<AlertPayload, 'severity' | 'summary' | 'details'>,
  kind?: string,
): AlertDraft => ({
  key,
  rule,
  taskId: task?.id ?? null,
  kind: task?.kind ?? kind ?? null,
  payload: { id: key, rule, occurredAt: at.toISOString(), task: task ? taskSummary(task) : null, source: 'taskwarden', ...fields },
});

/** One per stuck episode of a task (the episode names attempt, reason and last sign of life). */
export function stuckAlert(task: Task, verdict: StuckVerdict, actionTaken: StuckAction, actor: string, at: Date): AlertDraft {
  return draft(`task.stuck:${task.id}:${verdict.episode}`, 'task.stuck', at, task, {
    severity: actionTaken === 'none' ? 'warning' : 'critical',
    summary: `Task "${task.name}" is stuck (${describeStuck(verdict, task.timeoutMinutes)} at ${task.progress}%${task.message ? `, "${task.message}"` : ''}): ${stuckActionOutcome(actionTaken)} by ${actor}.`,
    details: { reason: verdict.reason, stuckSince: verdict.since.toISOString(), stuckForSeconds: verdict.stuckForMs / 1000, actionTaken, actor },
  });
}

/** A task that failed (by its worker or an operator; the monitor's own failures are stuck alerts). */
export function failedAlert(task: Task, event: TaskEvent): AlertDraft {
  return draft(`task.failed:${task.id}:${task.attempt}:${event.id}`, 'task.failed', event.at, task, {
    severity: 'warning',
    summary: `Task "${task.name}" failed${event.reason ? `: ${event.reason}` : ''} (by ${event.actor}).`,
    details: { error: task.error, actor: event.actor },
  });
}

/** Fires once per window per kind: the key names the window. */
export function burstAlert(kind: string, failures: number, windowMs: number, at: Date): AlertDraft {
  const window = Math.floor(at.getTime() / windowMs);
  return draft(
    `failures.burst:${kind}:${window}`,
    'failures.burst',
    at,
    null,
    {
      severity: 'critical',
      summary: `${failures} "${kind}" tasks failed within ${ms(windowMs, { long: true })}.`,
      details: { kind, failures, windowSeconds: windowMs / 1000, windowStart: new Date(window * windowMs).toISOString() },
    },
    kind,
  );
}

/** One per failing streak of one instance's monitor. */
export function monitorFailingAlert(instance: string, failures: number, lastError: string, since: Date, at: Date): AlertDraft {
  return draft(`monitor.failing:${instance}:${since.toISOString()}`, 'monitor.failing', at, null, {
    severity: 'critical',
    summary: `The stuck-task monitor on ${instance} failed ${failures} sweeps in a row: ${lastError}`,
    details: { instance, consecutiveFailures: failures, lastError, failingSince: since.toISOString() },
  });
}

/** One per task that waited too long for a worker. */
export function pendingAlert(task: Task, waitedMs: number, at: Date): AlertDraft {
  return draft(`task.pending:${task.id}`, 'task.pending', at, task, {
    severity: 'warning',
    summary: `Task "${task.name}" has waited ${ms(waitedMs, { long: true })} for a worker (kind "${task.kind}").`,
    details: { pendingForSeconds: waitedMs / 1000 },
  });
}

/** One per task cancelled because a task it depended on (`cause`, directly or further up) ended FAILED or CANCELLED. */
export function dependencyFailedAlert(task: Task, cause: { id: string; name: string; status: string }, at: Date): AlertDraft {
  return draft(`task.dependency_failed:${task.id}`, 'task.dependency_failed', at, task, {
    severity: 'warning',
    summary: `Task "${task.name}" was cancelled: it depends on "${cause.name}", which ended ${cause.status}.`,
    details: { reason: 'DEPENDENCY_FAILED', dependency: cause },
  });
}
