import { createClient } from 'graphql-ws';
import parsePrometheus from 'parse-prometheus-text-format';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openDatabase } from '../src/db/open.js';
import { createMonitor } from '../src/monitor/monitor.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { startProxy } from './support/proxy.js';
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
    cleanup.push(
      () => database.close(),
      () => server.stop(),
    );
    return { database, server };
  }
  async function runningTask(server: TestServer, name: string, kind = 'backtest') {
    const id = (await server.ok(`mutation($n: String!, $k: String) { createTask(input: { name: $n, kind: $k }) { id } }`, { n: name, k: kind })).createTask
      .id as string;
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
      summary: expect.stringMatching(/^Task "SMA cross AAPL" is stuck \(no heartbeat for 2 hours.*\): cancelled by monitor\.$/),
      task: { id, name: 'SMA cross AAPL', kind: 'backtest', status: 'CANCELLED', workerId: 'w-1', attempt: 1 },
      details: { reason: 'NO_HEARTBEAT', actionTaken: 'cancel', actor: 'monitor', stuckForSeconds: 7200 },
    });
    expect(delivery!.body.id).toMatch(new RegExp(`^task\\.stuck:${id}:1:NO_HEARTBEAT:`));
    // The receiver has the body before the deliverer records its answer: wait for the record, then check it whole.
    await until(async () => (await server.ok('{ alerts(status: DELIVERED) { id } }')).alerts.length === 1);
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
    // The receiver has the body before the deliverer records its answer: wait for the record, then check it whole.
    await until(async () => (await server.ok('{ alerts(status: DELIVERED) { id } }')).alerts.length === 1);
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
    cleanup.push(
      () => all.close(),
      () => slack.close(),
      () => feishu.close(),
      () => rulesOnly.close(),
      () => kindsOnly.close(),
    );
    const { server } = await setup({ ALERT_WEBHOOK_URLS: `${all.url},slack=${slack.url}`, ALERT_CONFIG: file });
    const { id, lease } = await runningTask(server, 'will fail');
    await server.ok(`mutation { failTask(id: "${id}", leaseToken: "${lease}", error: "ValueError: empty price series\\n  at load") { id } }`);
    await until(() => all.accepted.length === 1 && slack.accepted.length === 1);
    expect(all.received[0]!.body).toMatchObject({
      rule: 'task.failed',
      summary: 'Task "will fail" failed: ValueError: empty price series (by w-1).',
      details: { error: 'ValueError: empty price series\n  at load' },
    });
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

  it('alerts once on a task left PENDING longer than ALERT_PENDING_AFTER, and not on one started or created since', { timeout: 90_000 }, async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url, ALERT_PENDING_AFTER: '10m', HEARTBEAT_TIMEOUT: '1h', STALL_TIMEOUT: '1h' });
    const create = async (name: string) =>
      (await server.ok(`mutation($n: String!) { createTask(input: { name: $n, kind: "gpu" }) { id } }`, { n: name })).createTask.id as string;
    const sweep = () => server.ok('mutation { runMonitorSweep { ran } }');
    const waiting = await create('no worker for me');
    await runningTask(server, 'picked up at once', 'gpu');
    server.clock.advance(5 * 60_000);
    const later = await create('created later');
    server.clock.advance(6 * 60_000); // the first has waited 11 minutes, the later one 6
    await sweep();
    await until(() => receiver.accepted.length === 1);
    expect(receiver.received[0]!.body).toMatchObject({
      id: `task.pending:${waiting}`,
      rule: 'task.pending',
      severity: 'warning',
      summary: 'Task "no worker for me" has waited 11 minutes for a worker (kind "gpu").',
      task: { id: waiting, status: 'PENDING', kind: 'gpu' },
      details: { pendingForSeconds: 660 },
    });
    // One per task: later sweeps say nothing more about it.
    await sweep();
    await sweep();
    server.clock.advance(5 * 60_000);
    await sweep();
    await until(() => receiver.accepted.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.received.map((r) => r.body.id)).toEqual([`task.pending:${waiting}`, `task.pending:${later}`]);
    expect((await server.ok('{ alerts { rule taskId } }')).alerts).toEqual([
      { rule: 'task.pending', taskId: later },
      { rule: 'task.pending', taskId: waiting },
    ]);
  });

  it('counts failure bursts per kind: failures of two kinds never add up to one burst', { timeout: 90_000 }, async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server } = await setup({ ALERT_WEBHOOK_URLS: receiver.url, ALERT_BURST_COUNT: '3', ALERT_BURST_WINDOW: '10m' });
    server.clock.set(new Date(Math.ceil(server.clock.now().getTime() / 600_000) * 600_000 + 1000));
    const fail = async (kind: string) => {
      const { id, lease } = await runningTask(server, `${kind} run`, kind);
      await server.ok(`mutation { failTask(id: "${id}", leaseToken: "${lease}", error: "diverged") { id } }`);
    };
    const rules = (rule: string) => receiver.accepted.filter((r) => r.body.rule === rule);
    for (const kind of ['optimize', 'backtest', 'optimize', 'backtest']) await fail(kind);
    await until(() => rules('task.failed').length === 4);
    await new Promise((r) => setTimeout(r, 300));
    expect(rules('failures.burst')).toEqual([]); // four failures in the window, but two of each kind
    await fail('optimize');
    await until(() => rules('failures.burst').length === 1);
    expect(rules('failures.burst')[0]!.body).toMatchObject({
      details: { kind: 'optimize', failures: 3 },
      summary: '3 "optimize" tasks failed within 10 minutes.',
    });
    await fail('backtest');
    await until(() => rules('failures.burst').length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(rules('failures.burst').map((r) => [r.body.details.kind, r.body.details.failures])).toEqual([
      ['optimize', 3],
      ['backtest', 3],
    ]);
  });

  it('rolls an alert back with its cause: a transaction that fails after writing the alert delivers and publishes nothing', { timeout: 90_000 }, async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.close());
    const { server, database } = await setup({ ALERT_WEBHOOK_URLS: receiver.url });
    const prisma = database.db.prisma;
    // The cause itself fails at commit, after the alert went into the outbox in the same transaction.
    await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_ending() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
    await prisma.$executeRawUnsafe(
      `CREATE CONSTRAINT TRIGGER refuse_ending AFTER INSERT ON "TaskEvent" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.type::text IN ('CANCELLED', 'FAILED')) EXECUTE FUNCTION refuse_ending()`,
    );
    const heard: unknown[] = [];
    const client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    cleanup.push(async () => client.dispose());
    const baseline = server.taskwarden.services.bus.openSubscriptions;
    client.subscribe({ query: 'subscription { stuckTaskDetected { task { id } } }' }, { next: (m) => void heard.push(m), error: () => {}, complete: () => {} });
    await until(() => server.taskwarden.services.bus.openSubscriptions > baseline);

    const stuck = await runningTask(server, 'stuck, but its cancel is refused');
    const failing = await runningTask(server, 'fails, but its failure is refused');
    server.clock.advance(2 * HOUR);
    const swept = await server.gql('mutation { runMonitorSweep { ran } }');
    expect(swept.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const failed = await server.gql(`mutation { failTask(id: "${failing.id}", leaseToken: "${failing.lease}", error: "boom") { id } }`);
    expect(failed.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    await new Promise((r) => setTimeout(r, 500)); // the delivery loop polls every 100 ms
    expect(await prisma.alert.count()).toBe(0);
    expect(await prisma.alertDelivery.count()).toBe(0);
    expect(receiver.received).toEqual([]);
    expect(heard).toEqual([]);
    expect((await prisma.task.findMany({ select: { status: true } })).map((t) => t.status)).toEqual(['RUNNING', 'RUNNING']);

    // The same sweep once the cause can commit: its alert is delivered and heard (so the silence above meant something).
    await prisma.$executeRawUnsafe('DROP TRIGGER refuse_ending ON "TaskEvent"');
    // A failed sweep starts the monitor's grace again: the first sweep through finds nothing stuck.
    await server.ok('mutation { runMonitorSweep { ran } }');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => receiver.accepted.length === 2 && heard.length === 2);
    expect(new Set(receiver.accepted.map((r) => r.body.task.id))).toEqual(new Set([stuck.id, failing.id]));
  });

  if (kind === 'postgres') {
    it('delivers each alert exactly once when two instances run delivery on one database', { timeout: 90_000 }, async () => {
      const receiver = await startReceiver(() => 200, 0, { delayMs: 100 });
      cleanup.push(() => receiver.close());
      const env = { ALERT_WEBHOOK_URLS: receiver.url, ALERT_POLL_INTERVAL: '50ms', ALERT_BURST_COUNT: '1000' };
      const { server: a, database } = await setup(env);
      // The second instance opens its own connections, as another machine would.
      const second = await openDatabase(database.target, { migrate: false });
      const b = await startTestServer({ ...database, db: second }, { LOG_LEVEL: 'silent', ALERT_RETRY_BASE: '50ms', ...env });
      cleanup.push(
        () => second.close(),
        () => b.stop(),
      );
      const failMany = async (server: TestServer, n: number) => {
        for (let i = 0; i < n; i++) {
          const { id, lease } = await runningTask(server, `fails ${i}`);
          await server.ok(`mutation { failTask(id: "${id}", leaseToken: "${lease}", error: "boom") { id } }`);
        }
      };
      const N = 15;
      await Promise.all([failMany(a, N), failMany(b, N)]);
      await until(() => receiver.received.length >= 2 * N, 30_000);
      await new Promise((r) => setTimeout(r, 500)); // anything sent twice would have arrived by now
      const ids = receiver.received.map((r) => r.body.id);
      expect(ids).toHaveLength(2 * N);
      expect(new Set(ids).size).toBe(2 * N);
      const deliveries = await database.db.prisma.alertDelivery.findMany({ select: { status: true, attempts: true } });
      expect(deliveries).toHaveLength(2 * N);
      expect(deliveries.every((d) => d.status === 'DELIVERED' && d.attempts === 1)).toBe(true);
      // Both instances took part.
      const delivered = async (server: TestServer) => {
        const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
        return Number(/^taskwarden_alert_deliveries_total\{outcome="delivered"\} (\d+)/m.exec(text)?.[1] ?? 0);
      };
      const [byA, byB] = [await delivered(a), await delivered(b)];
      expect(byA + byB).toBe(2 * N);
      expect(byA).toBeGreaterThan(0);
      expect(byB).toBeGreaterThan(0);
    });

    it('sends monitor.failing straight while the database is away, and writes it to the outbox once it is back', { timeout: 90_000 }, async () => {
      const receiver = await startReceiver();
      cleanup.push(() => receiver.close());
      const database = await openTestDatabase(kind);
      cleanup.push(() => database.close());
      const url = new URL((database.target as { url: string }).url);
      const proxy = await startProxy({ host: url.hostname, port: Number(url.port || 5432) });
      url.port = String(proxy.port);
      const proxied = await openDatabase({ url: url.toString() }, { migrate: false });
      cleanup.push(
        () => proxy.close(),
        () => proxied.close(),
      );
      const server = await startTestServer(
        { ...database, db: proxied },
        {
          ALERT_WEBHOOK_URLS: receiver.url,
          MONITOR_ENABLED: 'true',
          MONITOR_INTERVAL: '100ms',
          ALERT_SWEEP_FAILURES: '2',
          ALERT_POLL_INTERVAL: '100ms',
          ALERT_RETRY_BASE: '50ms',
        },
      );
      cleanup.push(() => server.stop());
      await proxy.cut();
      await until(() => receiver.accepted.length === 1, 20_000);
      const [straight] = receiver.accepted;
      expect(straight!.body).toMatchObject({ rule: 'monitor.failing', details: { consecutiveFailures: 2 } });
      expect(await database.db.prisma.alert.count()).toBe(0); // the outbox was out of reach
      await proxy.restore();
      await until(() => receiver.accepted.length === 2, 20_000);
      // The outbox's delivery carries the same idempotency key, so a receiver keeps one.
      expect(receiver.accepted[1]!.body).toEqual(straight!.body);
      expect(receiver.accepted[1]!.headers['idempotency-key']).toBe(straight!.body.id);
      const { alerts } = await server.ok('{ alerts { key rule status } }');
      expect(alerts).toEqual([{ key: straight!.body.id, rule: 'monitor.failing', status: 'DELIVERED' }]);
    });
  }

  it('lists under alerts(status:) exactly the alerts that show that status, for every mix of deliveries', async () => {
    const { database, server } = await setup({});
    const mixes = {
      none: [[], 'NO_WEBHOOK'],
      pending: [['PENDING'], 'PENDING'],
      delivered: [['DELIVERED'], 'DELIVERED'],
      failed: [['FAILED'], 'FAILED'],
      'pending+delivered': [['PENDING', 'DELIVERED'], 'PENDING'],
      'failed+delivered': [['FAILED', 'DELIVERED'], 'FAILED'],
      'failed+pending': [['FAILED', 'PENDING'], 'FAILED'],
      'delivered+delivered': [['DELIVERED', 'DELIVERED'], 'DELIVERED'],
      'pending+delivered+failed': [['PENDING', 'DELIVERED', 'FAILED'], 'FAILED'],
    } as const;
    // Not due for a day: the delivery loop leaves them as they are.
    const nextAttemptAt = new Date(Date.now() + 24 * HOUR);
    for (const [key, [deliveries]] of Object.entries(mixes)) {
      await database.db.prisma.alert.create({
        data: {
          key,
          rule: 'task.failed',
          payload: {},
          createdAt: new Date(),
          deliveries: { create: deliveries.map((status, n) => ({ destination: `hook-${n}`, status, nextAttemptAt })) },
        },
      });
    }
    const shown = (await server.ok('{ alerts { key status } }')).alerts as { key: string; status: string }[];
    expect(Object.fromEntries(shown.map((a) => [a.key, a.status]))).toEqual(
      Object.fromEntries(Object.entries(mixes).map(([key, [, status]]) => [key, status])),
    );
    for (const status of ['PENDING', 'DELIVERED', 'FAILED', 'NO_WEBHOOK']) {
      const listed = (await server.ok(`{ alerts(status: ${status}) { key } }`)).alerts as { key: string }[];
      expect(listed.map((a) => a.key).sort()).toEqual(
        Object.entries(mixes)
          .filter(([, [, s]]) => s === status)
          .map(([key]) => key)
          .sort(),
      );
    }
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
    // An id is a bigint: the largest is merely not there, one past it is no id at all.
    const codeOf = async (id: string) => (await server.gql(`mutation { retryAlert(id: "${id}") { id } }`)).errors?.[0]?.extensions?.code;
    expect(await codeOf('9223372036854775807')).toBe('NOT_FOUND');
    expect(await codeOf('9223372036854775808')).toBe('BAD_USER_INPUT');
    expect(await codeOf('12a')).toBe('BAD_USER_INPUT');
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
      Number(families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);
    const before = await scrape();
    const { id } = (await server.ok('mutation { createTask(input: { name: "measured" }) { id } }')).createTask;
    await server.ok(`mutation { startTask(id: "${id}", workerId: "w") { leaseToken } }`);
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await server.gql('{ nope }');
    const after = await scrape();
    expect(
      value(after, 'taskwarden_task_transitions_total', { type: 'CREATED', actor: 'api' }) -
        value(before, 'taskwarden_task_transitions_total', { type: 'CREATED', actor: 'api' }),
    ).toBe(1);
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
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { createTask(input: { name: "x" }) { id } }' }),
    });
    const requestId = response.headers.get('x-request-id');
    const body = await response.json();
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.errors[0].extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId });
    expect(lines.some((line) => line.requestId === requestId && line.level === 50)).toBe(true);
    await server.stop();
  });
});
