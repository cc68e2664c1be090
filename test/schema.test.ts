import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isInterfaceType, isObjectType, type GraphQLObjectType } from 'graphql';
import { schema } from '../src/graphql/index.js';
import { printedSchema } from '../src/graphql/print.js';

describe('schema/schema.graphql', () => {
  it('is exactly what the code prints (run `npm run schema:print` after changing the API)', () => {
    expect(readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8')).toBe(printedSchema());
  });

  it('names the operations docs/api.md documents', () => {
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
      'failTask(error: String!, id: ID!, leaseToken: String!, retryable: Boolean): Task!',
      'createTasks(inputs: [CreateTaskInput!]!): [Task!]!',
      'setKindLimit(kind: String!, maxRunning: Int): KindQueue!',
      'pauseKind(kind: String!): KindQueue!',
      'resumeKind(kind: String!): KindQueue!',
      'queues: [KindQueue!]!',
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
  });

  it('hands out a lease token only in TaskLease, the answer to the worker that started the task', () => {
    const carriers = Object.values(schema.getTypeMap())
      .filter((type) => !type.name.startsWith('__') && (isObjectType(type) || isInterfaceType(type)))
      .filter((type) => 'leaseToken' in (type as GraphQLObjectType).getFields())
      .map((type) => type.name);
    expect(carriers).toEqual(['TaskLease']);
  });
});
