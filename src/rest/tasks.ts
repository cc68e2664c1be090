import { z } from '@hono/zod-openapi';
import { actorOf, tokenNameOf } from '../auth/roles.js';
import { badInput } from '../errors.js';
import type { Services } from '../services.js';
import * as valid from '../tasks/validate.js';
import { operation, param, REST_PREFIX, taskIdOf, type RestApp } from './operation.js';
import { Deleted, TaskDetail, TaskList, presenter, statusValues, toStatus, type RestStatus } from './schemas.js';

const TASKS = `${REST_PREFIX}/tasks`;
const DEFAULT_LIMIT = 50;

const list = operation({
  method: 'get',
  path: TASKS,
  summary: 'Tasks, newest first',
  permission: 'read',
  graphql: 'Query.tasks',
  request: {
    query: z
      .object({
        status: param
          .text(`Only these statuses, comma-separated: ${statusValues.join(', ')}.`)
          .optional()
          .openapi({ example: 'running,pending' }),
        kind: param.text('Only tasks of this kind.').optional(),
        limit: param.number(`At most this many (1 to ${valid.limits.pageSize}).`).default(DEFAULT_LIMIT),
      })
      .strict(),
  },
  ok: { description: 'The newest tasks that match, and how many match in all.', schema: TaskList },
  errors: [400],
});

const get = operation({
  method: 'get',
  path: `${TASKS}/{task_id}`,
  summary: 'One task, with its params and result',
  permission: 'read',
  graphql: 'Query.task',
  request: { params: param.taskId },
  ok: { description: 'The task.', schema: TaskDetail },
  errors: [400, 404],
});

const stop = operation({
  method: 'post',
  path: `${TASKS}/{task_id}/stop`,
  summary: 'Stop a pending or running task (it becomes cancelled; its worker loses its lease)',
  permission: 'operate',
  graphql: 'Mutation.stopTask',
  request: { params: param.taskId, query: z.object({ reason: param.text('Recorded in its history.').optional() }).strict() },
  ok: { description: 'The task as it was left.', schema: TaskDetail },
  errors: [400, 404, 409],
});

const remove = operation({
  method: 'delete',
  path: `${TASKS}/{task_id}`,
  summary: 'Delete a finished task (completed, failed or cancelled); its history is kept',
  permission: 'operate',
  graphql: 'Mutation.deleteTask',
  request: { params: param.taskId },
  ok: { description: 'It is deleted.', schema: Deleted },
  errors: [400, 404, 409],
});

/** The calls manage_tasks.py makes (list, show, stop, delete), each over the service its GraphQL twin uses. */
export function registerTaskRoutes(api: RestApp, services: Services) {
  const present = presenter(services);

  api.openapi(list, async (c) => {
    const query = c.req.valid('query');
    const filter = { status: query.status === undefined ? undefined : statuses(query.status), kind: query.kind };
    const take = valid.wholeNumber(query.limit, 'limit', 1, valid.limits.pageSize);
    const [tasks, total] = await Promise.all([services.tasks.list(filter, { take }), services.tasks.count(filter)]);
    return c.json({ total, tasks: tasks.map((task) => present.summary(task)) }, 200);
  });

  api.openapi(get, async (c) => {
    const task = await services.tasks.require(taskIdOf(c.req.valid('param')));
    return c.json(present.detail(task), 200);
  });

  api.openapi(stop, async (c) => {
    const task = await services.tasks.stop(taskIdOf(c.req.valid('param')), {
      reason: c.req.valid('query').reason,
      actor: actorOf(c.get('principal')),
      tokenName: tokenNameOf(c.get('principal')),
    });
    return c.json(present.detail(task), 200);
  });

  api.openapi(remove, async (c) => {
    const id = await services.tasks.delete(taskIdOf(c.req.valid('param')), { actor: actorOf(c.get('principal')), tokenName: tokenNameOf(c.get('principal')) });
    return c.json({ id, deleted: true as const }, 200);
  });
}

/** `running` or `running,pending`, as the seed writes statuses. */
function statuses(text: string) {
  return text.split(',').map((part) => {
    const status = part.trim().toLowerCase() as RestStatus;
    if (!statusValues.includes(status)) throw badInput('status', `expected ${statusValues.join(', ')} (comma-separated), got "${part}"`);
    return toStatus(status);
  });
}
