import { z } from '@hono/zod-openapi';
import { actorOf, tokenNameOf } from '../auth/roles.js';
import { stuckActions } from '../tasks/stuck.js';
import { cleanupDefaults } from '../monitor/monitor.js';
import * as valid from '../tasks/validate.js';
import type { Services } from '../services.js';
import { operation, param, REST_PREFIX, taskIdOf, type RestApp } from './operation.js';
import { CleanupReport, Statistics, StuckList, TaskDetail, cleanupReport, presenter, statistics, statusValues, toStatus } from './schemas.js';

const MONITOR = `${REST_PREFIX}/tasks/monitor`;

const timeoutMinutes = param
  .number('Running tasks silent, frozen or overtime for longer than this many minutes are stuck.')
  .default(cleanupDefaults.timeoutMinutes);

const stuck = operation({
  method: 'get',
  path: `${MONITOR}/stuck`,
  summary: 'Stuck tasks under a timeout',
  permission: 'read',
  graphql: 'Query.stuckTasks',
  request: { query: z.object({ timeout_minutes: timeoutMinutes }).strict() },
  ok: { description: 'The stuck tasks, longest stuck first.', schema: StuckList },
  errors: [400],
});

const cleanup = operation({
  method: 'post',
  path: `${MONITOR}/cleanup`,
  summary: 'Find stuck tasks and, with auto_fix, apply the action to them',
  permission: 'operate',
  graphql: 'Mutation.cleanupStuck',
  request: {
    query: z
      .object({
        timeout_minutes: timeoutMinutes,
        auto_fix: param.boolean('Apply the action; without it, a dry run that changes nothing.').default(cleanupDefaults.autoFix),
        action: z
          .enum(stuckActions, { error: `expected one of ${stuckActions.join(', ')}` })
          .default(cleanupDefaults.action)
          .openapi({ description: 'What to do with each stuck task.' }),
      })
      .strict(),
  },
  ok: { description: 'What was found and, with auto_fix, fixed.', schema: CleanupReport },
  errors: [400],
});

const forceComplete = operation({
  method: 'post',
  path: `${MONITOR}/force-complete/{task_id}`,
  summary: 'Mark a running task cancelled or failed, whatever its worker is doing',
  permission: 'operate',
  graphql: 'Mutation.forceComplete',
  request: {
    params: param.taskId,
    query: z
      .object({
        status: z
          .enum(statusValues, { error: `expected ${statusValues.join(', ')}` })
          .default('cancelled')
          .openapi({ description: 'cancelled or failed (any other status is refused).' }),
        reason: param.text('Recorded in its history (and as its error when failed).').optional(),
      })
      .strict(),
  },
  ok: { description: 'The task as it was left.', schema: TaskDetail },
  errors: [400, 404, 409],
});

const statisticsRoute = operation({
  method: 'get',
  path: `${MONITOR}/statistics`,
  summary: "Counts by status, stuck tasks, success rate, average duration, and the monitor's settings and last sweep",
  permission: 'read',
  graphql: 'Query.taskStats + Query.monitor',
  request: {
    query: z
      .object({
        since: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time' }).optional().openapi({ description: 'Count only tasks created since then.' }),
      })
      .strict(),
  },
  ok: { description: 'The statistics.', schema: Statistics },
  errors: [400],
});

/** The seed's four monitor endpoints, each over the service its GraphQL twin uses. */
export function registerMonitorRoutes(api: RestApp, services: Services) {
  const present = presenter(services);

  api.openapi(stuck, async (c) => {
    const query = c.req.valid('query');
    const found = await services.tasks.stuck(services.monitor.rules(valid.minutes(query.timeout_minutes, 'timeout_minutes')));
    return c.json(
      { timeout_minutes: query.timeout_minutes, count: found.length, tasks: found.map(({ task, verdict }) => present.summary(task, verdict)) },
      200,
    );
  });

  api.openapi(cleanup, async (c) => {
    const query = c.req.valid('query');
    const report = await services.monitor.cleanup({
      timeoutMs: valid.minutes(query.timeout_minutes, 'timeout_minutes'),
      autoFix: query.auto_fix,
      action: query.action,
      actor: actorOf(c.get('principal')),
      tokenName: tokenNameOf(c.get('principal')),
    });
    return c.json(cleanupReport(report, present), 200);
  });

  api.openapi(forceComplete, async (c) => {
    const query = c.req.valid('query');
    const task = await services.tasks.forceComplete(taskIdOf(c.req.valid('param')), {
      status: toStatus(query.status),
      reason: query.reason,
      actor: actorOf(c.get('principal')),
      tokenName: tokenNameOf(c.get('principal')),
    });
    return c.json(present.detail(task), 200);
  });

  api.openapi(statisticsRoute, async (c) => {
    const { since } = c.req.valid('query');
    const [stats, lastSweep] = await Promise.all([services.stats.taskStats(since ? new Date(since) : null), services.monitor.lastSweep()]);
    return c.json(statistics(stats, services.monitor.status(), lastSweep, present.summary), 200);
  });
}
