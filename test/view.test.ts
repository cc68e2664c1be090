import { describe, expect, it } from 'vitest';
import { detectStuck, oneTimeout, type StuckInput } from '../src/tasks/stuck.js';
import { taskView } from '../src/tasks/view.js';

// The fields GraphQL, REST and the CLI's direct-database mode show beside a task's columns, from one function.
describe('taskView', () => {
  const now = new Date('2026-11-30T12:00:00.000Z');
  const minutesAgo = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
  const running = (fields: Partial<StuckInput>): StuckInput & { completedAt: Date | null } => ({
    status: 'RUNNING',
    attempt: 1,
    startedAt: minutesAgo(90),
    lastHeartbeatAt: minutesAgo(1),
    lastProgressAt: minutesAgo(1),
    timeoutMinutes: null,
    heartbeatTimeoutSeconds: null,
    stallTimeoutMinutes: null,
    completedAt: null,
    ...fields,
  });

  it('has no run time before a start, runs to now while running, and to the finish once finished', () => {
    expect(taskView({ startedAt: null, completedAt: null }, null, now).durationSeconds).toBeNull();
    expect(taskView({ startedAt: minutesAgo(90), completedAt: null }, null, now).durationSeconds).toBe(5400);
    expect(taskView({ startedAt: minutesAgo(90), completedAt: minutesAgo(30) }, null, now).durationSeconds).toBe(3600);
  });

  it('shows no stuck fields without a verdict', () => {
    expect(taskView(running({}), null, now)).toEqual({ durationSeconds: 5400, isStuck: false, stuckReason: null, stuckSince: null, stuckForSeconds: null });
  });

  it("shows a verdict's reason, since and span in seconds", () => {
    const silent = running({ lastHeartbeatAt: minutesAgo(45), lastProgressAt: minutesAgo(60) });
    const verdict = detectStuck(silent, now, oneTimeout(30 * 60_000));
    expect(verdict?.reason).toBe('NO_HEARTBEAT');
    expect(taskView(silent, verdict, now)).toEqual({
      durationSeconds: 5400,
      isStuck: true,
      stuckReason: 'NO_HEARTBEAT',
      stuckSince: minutesAgo(45),
      stuckForSeconds: 2700,
    });
  });

  it('shows OVERTIME as stuck since the start', () => {
    const overtime = running({ timeoutMinutes: 60 });
    expect(taskView(overtime, detectStuck(overtime, now, oneTimeout(30 * 60_000)), now)).toMatchObject({
      isStuck: true,
      stuckReason: 'OVERTIME',
      stuckSince: minutesAgo(90),
      stuckForSeconds: 5400,
    });
  });
});
