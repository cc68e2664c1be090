import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runServerToExit, spawnServer } from './support/process.js';

const dirs: string[] = [];
const tempDataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskwarden-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const post = async (url: string, query: string) =>
  (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })).json()) as any;

describe('the server process', () => {
  it('refuses a bad setting with one line naming it, and exit code 2', async () => {
    const { code, output } = await runServerToExit({ MONITOR_INTERVAL: 'often', DATA_DIR: tempDataDir() });
    expect(code).toBe(2);
    expect(output.trim()).toBe('taskwarden: MONITOR_INTERVAL="often": expected a duration such as 30m, 90s or 1h');
  });

  // Three server processes one after the other: about 18 s alone on 2 cores, past 30 s beside the browser tests.
  it('keeps data across restarts, refuses a second server on the same data, and drains on SIGTERM', { timeout: 90_000 }, async () => {
    const dataDir = tempDataDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    const created = await post(first.url, 'mutation { createTask(input: { name: "survives restarts" }) { id } }');
    const id = created.data.createTask.id;

    // A second server on the same directory would corrupt it: it must refuse, clearly.
    const second = await runServerToExit({ DATA_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.output).toMatch(/^taskwarden: The database in .* is in use by process \d+/);

    // An open subscription is closed with 1001 (going away) when the server drains.
    const client = createClient({ url: first.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    const connected = new Promise((resolve) => client.on('connected', resolve));
    client.subscribe({ query: 'subscription { taskUpdated { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    await connected;
    first.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await first.exited).toBe(0);
    await client.dispose();

    const restarted = await spawnServer({ DATA_DIR: dataDir });
    const again = await post(restarted.url, `{ task(id: "${id}") { name status } }`);
    expect(again.data.task).toEqual({ name: 'survives restarts', status: 'PENDING' });
    restarted.child.kill('SIGINT');
    expect(await restarted.exited).toBe(0);
  });

  it(
    'says first where the dashboard, GraphiQL and the data are and whether tokens are needed: short lines for a person, JSON for machines',
    { timeout: 240_000 },
    async () => {
      const pretty = await spawnServer({ DATA_DIR: 'memory', LOG_FORMAT: 'pretty' });
      pretty.child.kill('SIGTERM');
      expect(await pretty.exited).toBe(0);
      const lines = pretty.output().trim().split('\n');
      expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
      const ready = lines.findIndex((line) => line.startsWith('Taskwarden is ready'));
      expect(lines[ready]).toBe(`Taskwarden is ready: the dashboard at ${pretty.url.replace(/graphql$/, '')}, GraphiQL and the API at ${pretty.url}`);
      expect(lines.slice(ready + 1, ready + 4)).toEqual([
        '  data     embedded database in memory',
        expect.stringMatching(/^ {2}tokens {3}NOT required: no API token exists/),
        '  monitor  every 15s, no heartbeat for 2m or no progress for 1h is stuck, action cancel',
      ]);
      // Only what a person needs comes before it: the migrations, and in a clone whose dashboard was
      // never built (as CI's), the warning that says how to build it.
      const beforeReady = lines.slice(0, ready);
      expect(beforeReady.filter((line) => !/^\[\d\d:\d\d:\d\d\] (INFO: applied database migrations|WARN: the dashboard is not built)/.test(line))).toEqual([]);

      const json = await spawnServer({ DATA_DIR: 'memory', LOG_FORMAT: 'json', TASKWARDEN_TOKENS: 'ops:admin:a-secret-of-16-chars' });
      json.child.kill('SIGTERM');
      expect(await json.exited).toBe(0);
      const entries = json
        .output()
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(entries.find((entry) => entry.msg.startsWith('Taskwarden is ready'))).toMatchObject({
        level: 30,
        dashboard: json.url.replace(/graphql$/, ''),
        graphiql: json.url,
        api: json.url,
        data: 'embedded database in memory',
        tokensRequired: true,
      });
    },
  );
});

describe('durable alerts', () => {
  it('sends an alert recorded before a kill -9 once the server is back', { timeout: 120_000 }, async () => {
    const { startReceiver, until } = await import('./support/receiver.js');
    const { createServer } = await import('node:net');
    // A port with nobody listening yet: the first delivery attempts fail and the alert waits in the outbox.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const dataDir = tempDataDir();
    const env = {
      DATA_DIR: dataDir,
      MONITOR_INTERVAL: '1s',
      HEARTBEAT_TIMEOUT: '2s',
      ALERT_WEBHOOK_URLS: `http://127.0.0.1:${port}/hook`,
      ALERT_RETRY_BASE: '1s',
      ALERT_POLL_INTERVAL: '500ms',
    };
    const first = await spawnServer(env);
    const { id } = (await post(first.url, 'mutation { createTask(input: { name: "dies unheard" }) { id } }')).data.createTask;
    await post(first.url, `mutation { startTask(id: "${id}", workerId: "w") { leaseToken } }`);
    // Nobody is connected: the monitor finds it on its own and writes the alert to the outbox.
    await until(async () => (await post(first.url, '{ alerts(status: PENDING) { id } }')).data.alerts.length === 1, 20_000);
    first.child.kill('SIGKILL');
    await first.exited;

    const receiver = await startReceiver(() => 200, port);
    const second = await spawnServer(env);
    await until(() => receiver.accepted.length >= 1, 30_000);
    expect(receiver.accepted[0]!.body).toMatchObject({ rule: 'task.stuck', task: { id, status: 'CANCELLED' }, details: { reason: 'NO_HEARTBEAT' } });
    await until(async () => (await post(second.url, '{ alerts(status: DELIVERED) { id } }')).data.alerts.length === 1, 10_000);
    second.child.kill('SIGTERM');
    await second.exited;
    await receiver.close();
  });
});
