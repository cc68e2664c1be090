import { createClient } from 'graphql-ws';
import parsePrometheus from 'parse-prometheus-text-format';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createMonitor } from '../src/monitor/monitor.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { startReceiver, until } from './support/receiver.js';
import { startTestServer, type TestServer } from './support/server.js';
import { taskHarness } from './support/tasks.js';

const HOUR = 3_600_000;

describeEachDatabase('alerts [%s]', (kind) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setup(env: Record<string, string>) {
    const database = await openTestDatabase(kind);
    const server = await startTestServer(database, { ALERT_RETRY_BASE: '50ms', ALERT_POLL_INTERVAL: '100ms', ...env });
    cleanup.push(() => database.close(), () => server.stop());
    return { database, server };
  }
  async function runningTask(server: TestServer, name: string, kind = 'backtest') {
    const id = (await server.ok(`mutation($n: String!, $k: String) { createTask(input: { name: $n, kind: $k }) { id } }`, { n: name, k: kind })).createTask.id as string;
    const lease = (await server.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w-1") { leaseToken } }`, { id })).startTask.leaseToken as string;
    return { id, lease };
  }

  it('delivers a stuck alert to a webhook with its payload and idempotency key', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url });
    const { id } = await runningTask(server, 'SMA cross AAPL');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => receiver.accepted.length === 1);
    const [delivery] = receiver.received;
    expect(delivery!.headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': 'taskwarden', 'idempotency-key': delivery!.body.id });
    expect(delivery!.body).toMatchObject({
      rule: 'task.stuck',
      severity: 'critical',
      source: 'taskwarden',
      summary: expect.stringContaining('"SMA cross AAPL" is stuck (no heartbeat for 2 hours'),
      task: { id, name: 'SMA cross AAPL', kind: 'backtest', status: 'CANCELLED', workerId: 'w-1', attempt: 1 },
      details: { reason: 'NO_HEARTBEAT', actionTaken: 'cancel', actor: 'monitor', stuckForSeconds: 7200 },
    });
    expect(delivery!.body.id).toMatch(new RegExp(`^task\\.stuck:${id}:1:NO_HEARTBEAT:`));
    const { alerts } = await server.ok('{ alerts { rule status taskId deliveries { status attempts lastStatus } } }');
    expect(alerts).toEqual([{ rule: 'task.stuck', status: 'DELIVERED', taskId: id, deliveries: [{ status: 'DELIVERED', attempts: 1, lastStatus: 200 }] }]);
  });

  it('retries a receiver that answers 500 twice, then marks the alert delivered once, with its attempts', async () => {
    const receiver = await startReceiver((n) => (n <= 2 ? 500 : 200));
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url });
    await runningTask(server, 'flaky receiver');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => receiver.accepted.length === 1);
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
    expect(receiver.received.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(receiver.received.map((r) => r.body.id)).size).toBe(1);
    const { alerts } = await server.ok('{ alerts { status deliveries { status attempts lastStatus lastError } } }');
    expect(alerts).toEqual([{ status: 'DELIVERED', deliveries: [{ status: 'DELIVERED', attempts: 3, lastStatus: 200, lastError: null }] }]);
  });

  it('alerts once per stuck episode, not once per sweep, on the webhook and the subscription alike', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url, MONITOR_ACTION: 'none' });
    const heard: unknown[] = [];
    const client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    cleanup.push(async () => client.dispose());
    // The server holds subscriptions of its own: wait for one more than before.
    const baseline = server.taskwarden.services.bus.openSubscriptions;
    client.subscribe({ query: 'subscription { stuckTaskDetected { reason } }' }, { next: (m) => void heard.push(m), error: () => {}, complete: () => {} });
    await until(() => server.taskwarden.services.bus.openSubscriptions > baseline);
    const { id, lease } = await runningTask(server, 'frozen');
    server.clock.advance(2 * HOUR);
    for (let i = 0; i < 3; i++) await server.ok('mutation { runMonitorSweep { ran } }');
    // It recovers, then goes quiet again: a new episode.
    await server.ok(`mutation { reportProgress(id: "${id}", leaseToken: "${lease}", progress: 50) { id } }`);
    server.clock.advance(2 * HOUR);
    for (let i = 0; i < 2; i++) await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => receiver.accepted.length === 2 && heard.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.accepted).toHaveLength(2);
    expect(heard).toHaveLength(2);
    expect((await server.ok('{ alerts { key } }')).alerts).toHaveLength(2);
  });

  it('alerts on a failed task, honours per-webhook filters, and speaks Slack and Feishu', async () => {
    const all = await startReceiver();
    const slack = await startReceiver();
    const feishu = await startReceiver();
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'tw-alerts-')), 'alerts.json');
    const rulesOnly = await startReceiver();
    const kindsOnly = await startReceiver();
    writeFileSync(
      file,
      JSON.stringify({
        webhooks: [
          { url: feishu.url, format: 'feishu', rules: ['task.stuck'], kinds: ['optimize'], headers: { authorization: 'Bearer hook-secret' } },
          { url: rulesOnly.url, rules: ['task.failed'] },
          { url: kindsOnly.url, kinds: ['optimize'] },
        ],
      }),
    );
    cleanup.push(() => all.close(), () => slack.close(), () => feishu.close(), () => rulesOnly.close(), () => kindsOnly.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: `${all.url},slack=${slack.url}`, ALERT_CONFIG: file });
    const { id, lease } = await runningTask(server, 'will fail');
    await server.ok(`mutation { failTask(id: "${id}", leaseToken: "${lease}", error: "ValueError: empty price series\\n  at load") { id } }`);
    await until(() => all.accepted.length === 1 && slack.accepted.length === 1);
    expect(all.received[0]!.body).toMatchObject({ rule: 'task.failed', summary: 'Task "will fail" failed: ValueError: empty price series (by w-1).', details: { error: 'ValueError: empty price series\n  at load' } });
    expect(slack.received[0]!.body).toEqual({ text: expect.stringContaining('Task "will fail" failed') });
    await runningTask(server, 'stuck optimiser', 'optimize');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => feishu.accepted.length === 1);
    expect(feishu.received[0]!.body).toEqual({ msg_type: 'text', content: { text: expect.stringContaining('"stuck optimiser" is stuck') } });
    expect(feishu.received).toHaveLength(1); // its filter kept the failure away
    expect(feishu.received[0]!.headers.authorization).toBe('Bearer hook-secret'); // a webhook's own headers reach it
    // Each filter on its own: by rule (the failure, not the stuck optimiser), by kind (the optimiser, not the backtest's failure).
    await until(() => rulesOnly.accepted.length >= 1 && kindsOnly.accepted.length >= 1 && all.accepted.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(rulesOnly.received.map((r) => [r.body.rule, r.body.task.name])).toEqual([['task.failed', 'will fail']]);
    expect(kindsOnly.received.map((r) => [r.body.rule, r.body.task.name])).toEqual([['task.stuck', 'stuck optimiser']]);
  });

  it('fires a failure-burst alert once per window', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url, ALERT_BURST_COUNT: '3', ALERT_BURST_WINDOW: '10m' });
    // Start the window at a round boundary so the failures below all fall in one.
    server.clock.set(new Date(Math.ceil(server.clock.now().getTime() / 600_000) * 600_000 + 1000));
    const failMany = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const { id, lease } = await runningTask(server, `opt ${i}`, 'optimize');
        await server.ok(`mutation { failTask(id: "${id}", leaseToken: "${lease}", error: "diverged") { id } }`);
      }
    };
    await failMany(5);
    await until(() => receiver.accepted.filter((r) => r.body.rule === 'failures.burst').length === 1);
    server.clock.advance(11 * 60_000);
    await failMany(3);
    await until(() => receiver.accepted.filter((r) => r.body.rule === 'failures.burst').length === 2);
    await new Promise((r) => setTimeout(r, 300));
    const bursts = receiver.accepted.filter((r) => r.body.rule === 'failures.burst');
    expect(bursts.map((b) => b.body.details.failures)).toEqual([3, 3]);
    expect(bursts[0]!.body.summary).toBe('3 "optimize" tasks failed within 10 minutes.');
  });

  it('keeps an alert that failed for good visible, and sends it again on retryAlert', async () => {
    let up = false;
    const receiver = await startReceiver(() => (up ? 200 : 503));
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url, ALERT_MAX_ATTEMPTS: '2' });
    await runningTask(server, 'unlucky');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(async () => (await server.ok('{ alerts(status: FAILED) { id } }')).alerts.length === 1);
    const [failed] = (await server.ok('{ alerts(status: FAILED) { id deliveries { status attempts lastError } } }')).alerts;
    expect(failed.deliveries).toEqual([{ status: 'FAILED', attempts: 2, lastError: 'HTTP 503' }]);
    up = true;
    await server.ok(`mutation { retryAlert(id: "${failed.id}") { status } }`);
    await until(() => receiver.accepted.length === 1);
    await until(async () => (await server.ok('{ alerts(status: DELIVERED) { id } }')).alerts.length === 1);
  });
});

describe('the monitor failing to sweep', () => {
  it('is alerted on once per failing streak, after M failures in a row, straight to the webhook while the database is away', async () => {
    const receiver = await startReceiver();
    const database = await openTestDatabase('pglite');
    const h = taskHarness(database, { webhooks: [{ url: receiver.url, format: 'json' }], sweepFailures: 2 });
    const monitor = createMonitor({
      ...h,
      settings: { enabled: true, intervalMs: 30, heartbeatTimeoutMs: HOUR, stallTimeoutMs: HOUR, action: 'cancel' },
      log: pino({ level: 'silent' }),
    });
    await database.close();
    monitor.start();
    await until(() => receiver.accepted.length === 1);
    // The streak goes on: still one alert for it.
    await until(() => monitor.status().consecutiveFailures >= 6);
    await new Promise((r) => setTimeout(r, 200));
    await monitor.stop();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.body).toMatchObject({ rule: 'monitor.failing', severity: 'critical', details: { consecutiveFailures: 2 } });
    await receiver.close();
  });
});

describe('observability', () => {
  let database: TestDatabase;
  afterEach(async () => {
    await database?.close().catch(() => {});
  });

  it('serves Prometheus metrics whose counters move with real operations', async () => {
    database = await openTestDatabase('pglite');
    const server = await startTestServer(database);
    const scrape = async () => {
      const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
      return parsePrometheus(text) as { name: string; metrics: { value?: string; labels?: Record<string, string>; count?: string }[] }[];
    };
    const value = (families: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string> = {}) =>
      Number(
        families
          .find((f) => f.name === name)
          ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0,
      );
    const before = await scrape();
    const { id } = (await server.ok('mutation { createTask(input: { name: "measured" }) { id } }')).createTask;
    await server.ok(`mutation { startTask(id: "${id}", workerId: "w") { leaseToken } }`);
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await server.gql('{ nope }');
    const after = await scrape();
    expect(value(after, 'taskwarden_task_transitions_total', { type: 'CREATED', actor: 'api' }) - value(before, 'taskwarden_task_transitions_total', { type: 'CREATED', actor: 'api' })).toBe(1);
    expect(value(after, 'taskwarden_task_transitions_total', { type: 'STARTED', actor: 'worker' })).toBe(1);
    expect(value(after, 'taskwarden_task_transitions_total', { type: 'CANCELLED', actor: 'monitor' })).toBe(1);
    expect(value(after, 'taskwarden_stuck_detections_total', { reason: 'NO_HEARTBEAT', action: 'cancel' })).toBe(1);
    // An operator's cleanup handles stuck tasks too, and counts the same way.
    const second = (await server.ok('mutation { createTask(input: { name: "cleaned" }) { id } }')).createTask;
    await server.ok(`mutation { startTask(id: "${second.id}", workerId: "w") { leaseToken } }`);
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { cleanupStuck(timeoutMinutes: 60, autoFix: true) { fixed { id } } }');
    expect(value(await scrape(), 'taskwarden_stuck_detections_total', { reason: 'NO_HEARTBEAT', action: 'cancel' })).toBe(2);
    expect(value(after, 'taskwarden_tasks', { status: 'CANCELLED' })).toBe(1);
    expect(Number(after.find((f) => f.name === 'taskwarden_sweep_duration_seconds')!.metrics[0]!.count)).toBe(1);
    const total = (families: Awaited<ReturnType<typeof scrape>>, name: string) =>
      (families.find((f) => f.name === name)?.metrics ?? []).reduce((sum, m) => sum + Number(m.value ?? 0), 0);
    // One invalid operation between the scrapes.
    expect(after.find((f) => f.name === 'graphql_envelop_request_duration')).toBeDefined();
    expect(total(after, 'graphql_envelop_error_result') - total(before, 'graphql_envelop_error_result')).toBe(1);
    // No webhook is configured: nothing waits in the outbox and nothing was delivered.
    expect(total(after, 'taskwarden_alert_outbox_backlog')).toBe(0);
    expect(total(after, 'taskwarden_alert_deliveries_total')).toBe(0);
    // A live client shows in the gauges, and leaves them when it goes.
    const live = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const baseline = server.taskwarden.services.bus.openSubscriptions;
    live.subscribe({ query: 'subscription { stuckTaskDetected { reason } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    await until(() => server.taskwarden.services.bus.openSubscriptions > baseline);
    const during = await scrape();
    expect(total(during, 'taskwarden_open_subscriptions')).toBe(server.taskwarden.services.bus.openSubscriptions);
    expect(total(during, 'taskwarden_live_connections') - total(after, 'taskwarden_live_connections')).toBe(1);
    await live.dispose();
    await until(() => server.taskwarden.services.bus.openSubscriptions === baseline);
    expect(total(await scrape(), 'taskwarden_live_connections')).toBe(total(after, 'taskwarden_live_connections'));
    await server.stop();
  });

  it('answers /health while alive and flips /ready when the database goes away', async () => {
    database = await openTestDatabase('pglite');
    const server = await startTestServer(database);
    const base = server.url.replace('/graphql', '');
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    await database.db.close();
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(503);
    await server.stop();
  });

  it('gives every response a request id that also names the log lines of its error', async () => {
    database = await openTestDatabase('pglite');
    const lines: any[] = [];
    const { createLogger } = await import('../src/log.js');
    const { loadConfig } = await import('../src/config.js');
    const { startTaskwarden } = await import('../src/server/taskwarden.js');
    const log = createLogger('error', { destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
    const server = await startTaskwarden({ config: loadConfig({ PORT: '0', MONITOR_ENABLED: 'false' }), log, db: database.db });
    await database.db.prisma.$executeRawUnsafe('DROP TABLE "TaskEvent" CASCADE');
    const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'mutation { createTask(input: { name: "x" }) { id } }' }) });
    const requestId = response.headers.get('x-request-id');
    const body = await response.json();
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.errors[0].extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId });
    expect(lines.some((line) => line.requestId === requestId && line.level === 50)).toBe(true);
    await server.stop();
  });
});
