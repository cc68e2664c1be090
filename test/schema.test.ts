import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../src/graphql/print.js';

describe('schema/schema.graphql', () => {
  it('is exactly what the code prints (run `npm run schema:print` after changing the API)', () => {
    expect(readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8')).toBe(printedSchema());
  });

  it('names the operations the README documents', () => {
    const sdl = printedSchema();
    for (const field of [
      'task(id: ID!): Task',
      'tasks(',
      'stuckTasks(timeoutMinutes: Float): [Task!]!',
      'taskStats(since: DateTime): TaskStats!',
      'monitor: MonitorStatus!',
      'createTask(input: CreateTaskInput!): Task!',
      'startTask(id: ID!, workerId: String!): TaskLease!',
      'claimTask(kinds: [String!], workerId: String!): TaskLease',
      'reportProgress(id: ID!, leaseToken: String!, message: String, progress: Float): Task!',
      'completeTask(id: ID!, leaseToken: String!, result: JSON): Task!',
      'failTask(error: String!, id: ID!, leaseToken: String!): Task!',
      'stopTask(id: ID!, reason: String): Task!',
      'deleteTask(id: ID!): ID!',
      'forceComplete(id: ID!, reason: String, status: TaskStatus! = CANCELLED): Task!',
      'cleanupStuck(action: StuckAction! = CANCEL, autoFix: Boolean! = false, timeoutMinutes: Float): CleanupReport!',
      'runMonitorSweep: SweepReport!',
      'taskUpdated(afterEventId: ID, id: ID, kinds: [String!]): TaskEvent!',
      'taskProgress(id: ID!): Task!',
      'stuckTaskDetected: StuckTaskAlert!',
    ]) {
      expect(sdl, field).toContain(field);
    }
    expect(sdl).not.toMatch(/leaseToken: String\n(?![\s\S]*TaskLease)/);
  });
});
