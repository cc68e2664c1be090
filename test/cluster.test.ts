import { randomBytes } from 'node:crypto';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { readMigrations } from '../src/db/migrate.js';
import { openDatabase } from '../src/db/open.js';
import { startTaskwarden } from '../src/server/taskwarden.js';
import { SWEEP_LOCK } from '../src/monitor/sweep.js';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { rawGraphQL } from './support/http.js';
import { subscribedInRedis } from './support/redis.js';
import { startTestServer, type TestServer } from './support/server.js';

// Two instances on one PostgreSQL database and one Redis: what "more than one machine" looks like.
describe.runIf(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL)('two instances [postgres + redis]', () => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    const env = { REDIS_URL: process.env.TEST_REDIS_URL! };
    a = await startTestServer(database, env);
    // The second instance opens its own connections, as another machine would.
    const second = await openDatabase(database.target, { migrate: true });
    b = await startTestServer({ ...database, db: second }, env);
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await b.taskwarden.db.close();
    await database.close();
  });

  it('shows progress reported to one instance on a subscription held by the other', async () => {
    const client = b.ws();
    const received: any[] = [];
    const bus = b.taskwarden.services.bus;
    // The server holds subscriptions of its own: wait for one more than before.
    const baseline = bus.openSubscriptions;
    client.subscribe(
      { query: 'subscription { taskUpdated { type progress task { name } } }' },
      { next: (m) => void received.push(m), error: () => {}, complete: () => {} },
    );
    await until(() => bus.openSubscriptions > baseline);
    await subscribedInRedis('taskwarden:task:updated');

    const id = (await a.ok(`mutation { createTask(input: { name: "cross-instance" }) { id } }`)).createTask.id;
    const lease = (await a.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id })).startTask.leaseToken;
    await a.ok(`mutation($id: ID!, $l: String!) { reportProgress(id: $id, leaseToken: $l, progress: 77) { id } }`, { id, l: lease });
    await until(() => received.length >= 3);
    expect(received.map((m) => [m.data.taskUpdated.type, m.data.taskUpdated.progress, m.data.taskUpdated.task.name])).toEqual([
      ['CREATED', 0, 'cross-instance'],
      ['STARTED', 0, 'cross-instance'],
      ['PROGRESS', 77, 'cross-instance'],
    ]);
  });

  it('sweeps from one instance at a time: a stuck task seen by both is handled and alerted once', async () => {
    await database.reset();
    const id = (await a.ok(`mutation { createTask(input: { name: "stuck on both" }) { id } }`)).createTask.id;
    await a.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id });
    a.clock.advance(2 * 3_600_000);
    b.clock.advance(2 * 3_600_000);
    // Hold the task's row from a third connection, so both sweeps are in flight before either can act.
    const holder = await database.connect!();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM "Task" WHERE id = $1 FOR UPDATE', [id]);
    const sweeps = Promise.all([a.ok(`mutation { runMonitorSweep { ran found { id } } }`), b.ok(`mutation { runMonitorSweep { ran found { id } } }`)]);
    await waitUntil(async () => {
      const { rows } = await holder.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
      return rows[0].n >= 2;
    });
    await holder.query('COMMIT');
    const [ra, rb] = await sweeps;
    expect([ra.runMonitorSweep.ran, rb.runMonitorSweep.ran]).toEqual([true, true]); // manual sweeps wait their turn
    // The second sweep ran after the first committed, so it found nothing left to do.
    expect([...ra.runMonitorSweep.found, ...rb.runMonitorSweep.found]).toEqual([{ id }]);
    const events = await database.db.prisma.taskEvent.findMany({ where: { taskId: id, type: 'CANCELLED' } });
    expect(events).toHaveLength(1);
    expect(await database.db.prisma.alert.count({ where: { rule: 'task.stuck' } })).toBe(1);

    const [ma, mb] = await Promise.all([a.ok(`{ monitor { lastSweepAt } }`), b.ok(`{ monitor { lastSweepAt } }`)]);
    expect(ma.monitor.lastSweepAt).toBe(mb.monitor.lastSweepAt);
  });

  // Found by the chaos suite: a record that started when the sweep asked for the lock overlapped the
  // record of the sweep it waited for, so the records could not show one sweeper at a time.
  it('records a sweep from when it held the sweep lock, not from when it waited for it', async () => {
    await database.reset();
    const holder = await database.connect!();
    await holder.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK]);
    const asked = a.clock.now().getTime();
    const sweep = a.ok(`mutation { runMonitorSweep { ran } }`);
    await waitUntil(async () => {
      const { rows } = await holder.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
      return rows[0].n >= 1;
    });
    a.clock.advance(60_000);
    await holder.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK]);
    expect((await sweep).runMonitorSweep.ran).toBe(true);
    const [record] = await database.db.prisma.monitorSweep.findMany();
    expect(record!.startedAt.getTime()).toBe(asked + 60_000);
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function until(check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.runIf(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL)('revocation on two instances [postgres + redis]', () => {
  it("closes a revoked token's WebSocket on the other instance too", { timeout: 60_000 }, async () => {
    const database = await openTestDatabase('postgres');
    const admin = 'tw-test-admin-secret-0123456789';
    const env = { REDIS_URL: process.env.TEST_REDIS_URL!, TASKWARDEN_TOKENS: `root:admin:${admin}` };
    const a = await startTestServer(database, env);
    const second = await openDatabase(database.target, { migrate: false });
    const b = await startTestServer({ ...database, db: second }, env);
    try {
      const asAdmin = { authorization: `Bearer ${admin}` };
      const made = await rawGraphQL(a.url, 'mutation { createApiToken(name: "doomed", role: VIEWER) { token } }', asAdmin);
      const token = made.json.data.createApiToken.token as string;
      const client = createClient({
        url: b.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
      });
      const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
      const bus = b.taskwarden.services.bus;
      const baseline = bus.openSubscriptions;
      client.subscribe({ query: 'subscription { taskUpdated { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
      await until(() => bus.openSubscriptions > baseline);
      await subscribedInRedis('taskwarden:token:changed', 2);

      const revoked = await rawGraphQL(a.url, 'mutation { revokeApiToken(name: "doomed") { revokedAt } }', asAdmin);
      expect(revoked.json.data.revokeApiToken.revokedAt).toEqual(expect.any(String));
      expect(await closed).toBe(4401);
      await until(() => bus.openSubscriptions === baseline);
      expect((await rawGraphQL(b.url, '{ viewer { name } }', { authorization: `Bearer ${token}` })).status).toBe(401);
      await client.dispose();
    } finally {
      await a.stop();
      await b.stop();
      await second.close();
      await database.close();
    }
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)('two instances on a brand-new database [postgres]', () => {
  it('both start at once: the migrations are applied once, both are ready, neither fails', { timeout: 120_000 }, async () => {
    const base = process.env.TEST_DATABASE_URL!;
    const name = `taskwarden_first_start_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(base);
    url.pathname = `/${name}`;
    const start = () =>
      startTaskwarden({
        config: loadConfig({ PORT: '0', DATABASE_URL: url.toString(), MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent' }),
        log: pino({ level: 'silent' }),
      });
    const servers = await Promise.allSettled([start(), start()]);
    const started = servers.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    try {
      expect(servers.map((s) => (s.status === 'rejected' ? String(s.reason) : 'started'))).toEqual(['started', 'started']);
      const all = readMigrations().map((m) => m.name);
      expect(started.map((s) => s.db.applied).sort((x, y) => x.length - y.length)).toEqual([[], all]);
      const direct = new pg.Client({ connectionString: url.toString() });
      await direct.connect();
      const { rows } = await direct.query('SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name');
      await direct.end();
      expect(rows.map((r: { migration_name: string }) => r.migration_name)).toEqual(all);
      for (const server of started) expect((await fetch(server.url.replace('/graphql', '/ready'))).status).toBe(200);
    } finally {
      for (const server of started) await server.stop();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
