import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { beforeAll, expect, it } from 'vitest';
import { TaskStatus } from '../src/tasks/model.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { restClient } from './support/rest.js';
import { useTestServer } from './support/server.js';
import { taskIn } from './support/tasks.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
type Operation = { responses: Record<string, { content?: Record<string, unknown> }> };

describeEachDatabase('REST API: its OpenAPI document [%s]', (kind) => {
  let rest: ReturnType<typeof restClient>['call'];
  let document: { openapi: string; paths: Record<string, Record<string, Operation>> };
  const token: { viewer?: string; operator?: string } = {};

  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    rest = restClient(server.url).call;
    for (const role of ['viewer', 'operator'] as const) {
      token[role] = (await server.taskwarden.services.tokens.create({ name: role, role, createdBy: 'test' })).token;
    }
    const answer = await rest('GET', '/api/v1/openapi.json', token.viewer);
    expect(answer.status).toBe(200);
    document = answer.json;
  });

  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/api/v1/tasks',
      '/api/v1/tasks/monitor/cleanup',
      '/api/v1/tasks/monitor/force-complete/{task_id}',
      '/api/v1/tasks/monitor/statistics',
      '/api/v1/tasks/monitor/stuck',
      '/api/v1/tasks/{task_id}',
      '/api/v1/tasks/{task_id}/stop',
    ]);
  });

  it('is what every route answers: each status it gives is documented, and each body fits its schema', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(document, 'openapi');
    const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

    const services = server.taskwarden.services;
    const running = async () => (await taskIn(services.tasks, TaskStatus.RUNNING)).task.id;
    const inStatus = async (status: TaskStatus) => (await taskIn(services.tasks, status)).task.id;
    await running();
    server.clock.advance(45 * 60_000);

    // Every operation in the document, with calls that give each status it documents (500 is forced once, below).
    const calls: [method: string, template: string, url: () => Promise<string> | string, as: 'viewer' | 'operator' | 'nobody', status: number][] = [
      ['get', '/api/v1/tasks', () => '/api/v1/tasks?status=running&limit=10', 'viewer', 200],
      ['get', '/api/v1/tasks', () => '/api/v1/tasks?limit=0', 'viewer', 400],
      ['get', '/api/v1/tasks', () => '/api/v1/tasks', 'nobody', 401],
      ['get', '/api/v1/tasks/{task_id}', async () => `/api/v1/tasks/${await running()}`, 'viewer', 200],
      ['get', '/api/v1/tasks/{task_id}', () => '/api/v1/tasks/nope', 'viewer', 400],
      ['get', '/api/v1/tasks/{task_id}', () => `/api/v1/tasks/${UNKNOWN_ID}`, 'viewer', 404],
      ['get', '/api/v1/tasks/{task_id}', () => `/api/v1/tasks/${UNKNOWN_ID}`, 'nobody', 401],
      ['post', '/api/v1/tasks/{task_id}/stop', async () => `/api/v1/tasks/${await inStatus(TaskStatus.PENDING)}/stop`, 'operator', 200],
      ['post', '/api/v1/tasks/{task_id}/stop', () => '/api/v1/tasks/nope/stop', 'operator', 400],
      ['post', '/api/v1/tasks/{task_id}/stop', () => `/api/v1/tasks/${UNKNOWN_ID}/stop`, 'nobody', 401],
      ['post', '/api/v1/tasks/{task_id}/stop', async () => `/api/v1/tasks/${await running()}/stop`, 'viewer', 403],
      ['post', '/api/v1/tasks/{task_id}/stop', () => `/api/v1/tasks/${UNKNOWN_ID}/stop`, 'operator', 404],
      ['post', '/api/v1/tasks/{task_id}/stop', async () => `/api/v1/tasks/${await inStatus(TaskStatus.COMPLETED)}/stop`, 'operator', 409],
      ['delete', '/api/v1/tasks/{task_id}', async () => `/api/v1/tasks/${await inStatus(TaskStatus.FAILED)}`, 'operator', 200],
      ['delete', '/api/v1/tasks/{task_id}', () => '/api/v1/tasks/nope', 'operator', 400],
      ['delete', '/api/v1/tasks/{task_id}', () => `/api/v1/tasks/${UNKNOWN_ID}`, 'nobody', 401],
      ['delete', '/api/v1/tasks/{task_id}', async () => `/api/v1/tasks/${await inStatus(TaskStatus.COMPLETED)}`, 'viewer', 403],
      ['delete', '/api/v1/tasks/{task_id}', () => `/api/v1/tasks/${UNKNOWN_ID}`, 'operator', 404],
      ['delete', '/api/v1/tasks/{task_id}', async () => `/api/v1/tasks/${await running()}`, 'operator', 409],
      ['get', '/api/v1/tasks/monitor/stuck', () => '/api/v1/tasks/monitor/stuck?timeout_minutes=30', 'viewer', 200],
      ['get', '/api/v1/tasks/monitor/stuck', () => '/api/v1/tasks/monitor/stuck?timeout_minutes=soon', 'viewer', 400],
      ['get', '/api/v1/tasks/monitor/stuck', () => '/api/v1/tasks/monitor/stuck', 'nobody', 401],
      ['post', '/api/v1/tasks/monitor/cleanup', () => '/api/v1/tasks/monitor/cleanup?timeout_minutes=30&auto_fix=true', 'operator', 200],
      ['post', '/api/v1/tasks/monitor/cleanup', () => '/api/v1/tasks/monitor/cleanup?timeout_minutes=-5', 'operator', 400],
      ['post', '/api/v1/tasks/monitor/cleanup', () => '/api/v1/tasks/monitor/cleanup', 'nobody', 401],
      ['post', '/api/v1/tasks/monitor/cleanup', () => '/api/v1/tasks/monitor/cleanup', 'viewer', 403],
      [
        'post',
        '/api/v1/tasks/monitor/force-complete/{task_id}',
        async () => `/api/v1/tasks/monitor/force-complete/${await running()}?status=failed`,
        'operator',
        200,
      ],
      [
        'post',
        '/api/v1/tasks/monitor/force-complete/{task_id}',
        async () => `/api/v1/tasks/monitor/force-complete/${await running()}?status=pending`,
        'operator',
        400,
      ],
      ['post', '/api/v1/tasks/monitor/force-complete/{task_id}', () => `/api/v1/tasks/monitor/force-complete/${UNKNOWN_ID}`, 'nobody', 401],
      ['post', '/api/v1/tasks/monitor/force-complete/{task_id}', async () => `/api/v1/tasks/monitor/force-complete/${await running()}`, 'viewer', 403],
      ['post', '/api/v1/tasks/monitor/force-complete/{task_id}', () => `/api/v1/tasks/monitor/force-complete/${UNKNOWN_ID}`, 'operator', 404],
      [
        'post',
        '/api/v1/tasks/monitor/force-complete/{task_id}',
        async () => `/api/v1/tasks/monitor/force-complete/${await inStatus(TaskStatus.CANCELLED)}`,
        'operator',
        409,
      ],
      ['get', '/api/v1/tasks/monitor/statistics', () => '/api/v1/tasks/monitor/statistics', 'viewer', 200],
      ['get', '/api/v1/tasks/monitor/statistics', () => '/api/v1/tasks/monitor/statistics?since=yesterday', 'viewer', 400],
      ['get', '/api/v1/tasks/monitor/statistics', () => '/api/v1/tasks/monitor/statistics', 'nobody', 401],
    ];

    const exercised = new Map<string, Set<string>>();
    const check = async (method: string, template: string, url: string, as: keyof typeof token | 'nobody', expected: number) => {
      const answer = await rest(method.toUpperCase(), url, as === 'nobody' ? undefined : token[as]);
      const where = `${method.toUpperCase()} ${url} as ${as}`;
      expect(answer.status, `${where}: ${answer.text}`).toBe(expected);
      const documented = document.paths[template]?.[method]?.responses[String(answer.status)];
      expect(documented, `${where}: status ${answer.status} is not documented`).toBeDefined();
      expect(answer.headers.get('content-type'), where).toBe('application/json');
      const validate = ajv.getSchema(
        `openapi#/${pointer('paths', template, method, 'responses', String(answer.status), 'content', 'application/json', 'schema')}`,
      )!;
      expect(validate(answer.json) ? [] : validate.errors, `${where}: ${answer.text}`).toEqual([]);
      exercised.set(`${method} ${template}`, (exercised.get(`${method} ${template}`) ?? new Set()).add(String(answer.status)));
    };
    for (const [method, template, url, as, status] of calls) await check(method, template, await url(), as, status);

    const stats = services.stats;
    const original = stats.taskStats;
    stats.taskStats = async () => {
      throw new Error('boom');
    };
    try {
      await check('get', '/api/v1/tasks/monitor/statistics', '/api/v1/tasks/monitor/statistics', 'viewer', 500);
    } finally {
      stats.taskStats = original;
    }

    // The schemas do check: a body of the wrong shape fails.
    const list = ajv.getSchema(`openapi#/${pointer('paths', '/api/v1/tasks', 'get', 'responses', '200', 'content', 'application/json', 'schema')}`)!;
    expect(list({ total: 1, tasks: [{ id: UNKNOWN_ID, status: 'RUNNING' }] })).toBe(false);

    for (const [template, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const documented = Object.keys(operation.responses).filter((status) => status !== '500' || template.endsWith('/statistics'));
        expect([...(exercised.get(`${method} ${template}`) ?? [])].sort(), `${method} ${template}`).toEqual(documented.sort());
      }
    }
  });
});
