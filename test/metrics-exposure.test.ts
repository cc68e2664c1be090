import { beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, useTestDatabase } from './support/databases.js';
import { raw } from './support/http.js';
import { startTestServer, useTestServer } from './support/server.js';

// /metrics: who may read it, and that no caller can make it grow or make it repeat a secret.

const SECRET = 'tw_leakcheck_0123456789abcdefghijklmnopqrstuvwxyz';

/** Runs `count` calls of `call`, `width` at a time. */
async function inParallel(count: number, width: number, call: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await call(next++);
    }),
  );
}

/** The sum of a metric family's samples whose line matches `filter`. */
function sampleSum(text: string, name: string, filter: RegExp = /./) {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => filter.test(line))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('/metrics with tokens', () => {
  let metricsUrl: string;
  const token: Record<string, string> = {};

  const database = useTestDatabase('pglite', { reset: false });
  const server = useTestServer(database);
  beforeAll(async () => {
    for (const role of ['viewer', 'worker', 'operator'] as const) {
      token[role] = (await server.taskwarden.services.tokens.create({ name: `${role}-token`, role, createdBy: 'test' })).token;
    }
    metricsUrl = server.url.replace(/\/graphql$/, '/metrics');
  });

  const scrape = async () => {
    const response = await raw(metricsUrl, { headers: { authorization: `Bearer ${token.viewer}` } });
    expect(response.status).toBe(200);
    return response.text;
  };

  it('wants a token with the metrics permission (viewer, operator, admin): not a worker token, not none', async () => {
    const none = await raw(metricsUrl);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.text).not.toContain('taskwarden_tasks');
    const worker = await raw(metricsUrl, { headers: { authorization: `Bearer ${token.worker}` } });
    expect(worker.status).toBe(403);
    expect(worker.json.errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await raw(metricsUrl, { headers: { authorization: `Bearer ${token.operator}` } })).status).toBe(200);
    expect(await scrape()).toContain('taskwarden_tasks{status="RUNNING"}');
  });

  it('stays small through 1,500 rejected requests with varying query strings, records none of them, and never shows a secret', async () => {
    await raw(`${server.url}?query=${encodeURIComponent('{ monitor { enabled } }')}`, {
      headers: { authorization: `Bearer ${token.viewer}`, accept: 'application/json' },
    });
    const before = await scrape();
    const parsedBefore = sampleSum(before, 'graphql_envelop_phase_parse_count');

    await inParallel(1500, 16, async (i) => {
      const query = encodeURIComponent(`query Probe${i} { monitor { enabled } }`);
      const response = await raw(`${server.url}?query=${query}&access_token=${SECRET}&n=${i}`, {
        headers: { accept: 'application/json', host: `evil${i}.example` },
      });
      expect(response.status).toBe(401);
    });

    const after = await scrape();
    expect(sampleSum(after, 'graphql_envelop_phase_parse_count')).toBe(parsedBefore);
    expect(sampleSum(after, 'graphql_yoga_http_duration_count', /statusCode="401"/)).toBe(0);
    // Process metrics (memory, handles) move a little; 1,500 new series would be megabytes.
    console.log(`/metrics: ${before.length} bytes before, ${after.length} after 1,500 rejected requests`);
    expect(after.length - before.length).toBeLessThan(4096);
    for (const leak of [SECRET, 'access_token', 'evil', 'Probe']) expect(after).not.toContain(leak);
  });

  it('keeps its labels bounded for accepted requests too: no URL, no operation name, no error path', async () => {
    const before = await scrape();
    await inParallel(300, 16, async (i) => {
      const query = encodeURIComponent(`query Named${i} { monitor { enabled } alias${i}: task(id: "not-a-uuid-${i}") { id } }`);
      const response = await raw(`${server.url}?query=${query}&access_token=${SECRET}&n=${i}`, {
        headers: { accept: 'application/json', authorization: `Bearer ${token.viewer}` },
      });
      expect(response.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    });
    const after = await scrape();
    console.log(`/metrics: ${before.length} bytes before, ${after.length} after 300 accepted requests with unique names`);
    expect(after.length - before.length).toBeLessThan(4096);
    for (const leak of [SECRET, 'access_token', 'Named', 'alias', 'url=']) expect(after).not.toContain(leak);
    expect(sampleSum(after, 'graphql_yoga_http_duration_count', /operationType="query"/)).toBeGreaterThanOrEqual(300);
  });
});

describe('/metrics on its own port (METRICS_PORT)', () => {
  it('serves metrics there without a token, and not on the API port', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, { METRICS_PORT: '0', TASKWARDEN_TOKENS: `ops:admin:${'s'.repeat(32)}` });
    const { metricsUrl } = server.taskwarden;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(metricsUrl).not.toBe(server.url.replace(/\/graphql$/, '/metrics'));
    const own = await raw(metricsUrl!);
    expect(own.status).toBe(200);
    expect(own.text).toContain('taskwarden_tasks');
    const onApi = await raw(server.url.replace(/\/graphql$/, '/metrics'), { headers: { authorization: `Bearer ${'s'.repeat(32)}` } });
    expect(onApi.status).toBe(404);
    await server.stop();
    await expect(raw(metricsUrl!)).rejects.toThrow();
    await database.close();
  });
});

describe('/metrics in open (tokenless) loopback mode', () => {
  it('is open on a loopback Host, and refused under any other Host', async () => {
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database);
    const metricsUrl = server.url.replace(/\/graphql$/, '/metrics');
    expect((await raw(metricsUrl)).status).toBe(200);
    expect((await raw(metricsUrl, { headers: { host: `localhost:${new URL(metricsUrl).port}` } })).status).toBe(200);
    const rebound = await raw(metricsUrl, { headers: { host: 'evil.example' } });
    expect(rebound.status).toBe(403);
    expect(rebound.text).not.toContain('taskwarden_tasks');
    await server.stop();
    await database.close();
  });
});
