import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkInvariants, type ChaosRecord, type Invariant } from './chaos/checker.js';
import { readDatabase } from './chaos/collect.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { startReceiver, until } from './support/receiver.js';
import { startTestServer, type TestServer } from './support/server.js';

const HOUR = 3_600_000;

// The chaos suite's checker (test/chaos/checker.ts), checked: a short real history (tasks run, with
// progress the sampled history did not keep; stopped, deleted; one stuck, retried with a backoff, stuck
// again and failed, each time alerted; a live subscriber, and one that resumed from a live-only report),
// on which every invariant holds; then a planted violation of each invariant, in the database or in what
// clients recorded, must be caught, and only that one.
describeEachDatabase('the chaos checker [%s]', (kind) => {
  let database: TestDatabase;
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let clean: ChaosRecord;
  const ids: Record<string, string> = {};

  const collect = async (): Promise<ChaosRecord> => ({
    ...clean,
    ...(await readDatabase({ query: async (sql) => ({ rows: await database.db.prisma.$queryRawUnsafe(sql) }) })),
  });
  const caught = (record: ChaosRecord) => [...new Set(checkInvariants(record).map((v) => v.invariant))];
  const clone = (record: ChaosRecord): ChaosRecord => structuredClone(record);

  beforeAll(async () => {
    receiver = await startReceiver();
    database = await openTestDatabase(kind);
    server = await startTestServer(database, {
      ALERT_WEBHOOK_URLS: receiver.url,
      ALERT_RETRY_BASE: '50ms',
      ALERT_POLL_INTERVAL: '100ms',
      MONITOR_ACTION: 'retry',
    });
    const cursors: string[] = [];
    const ws = server.ws();
    ws.subscribe(
      { query: 'subscription { taskUpdated(afterEventId: "0") { id } }' },
      { next: (m: any) => void cursors.push(m.data.taskUpdated.id), error: () => {}, complete: () => {} },
    );

    const created: string[] = [];
    const acks: ChaosRecord['acks'] = [];
    const create = async (name: string, maxAttempts = 3) => {
      const id = (await server.ok(`mutation($n: String!, $m: Int) { createTask(input: { name: $n, maxAttempts: $m }) { id } }`, { n: name, m: maxAttempts }))
        .createTask.id as string;
      created.push(id);
      return (ids[name] = id);
    };
    const start = async (id: string, worker: string) =>
      (await server.ok(`mutation($id: ID!, $w: String!) { startTask(id: $id, workerId: $w) { leaseToken } }`, { id, w: worker })).startTask
        .leaseToken as string;

    const done = await create('done');
    const lease = await start(done, 'w1');
    // The clock stands still, so only the first report is kept in the history; the two after it are live only.
    const report = (progress: number) =>
      server.ok(`mutation($id: ID!, $l: String!, $p: Float!) { reportProgress(id: $id, leaseToken: $l, progress: $p) { id } }`, {
        id: done,
        l: lease,
        p: progress,
      });
    await report(50);
    await report(60);
    await until(() => cursors.some(isLiveOnly));
    await report(70);
    await server.ok(`mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l, result: {}) { id } }`, { id: done, l: lease });
    acks.push({ taskId: done, type: 'COMPLETED', actor: 'w1' });

    const stopped = await create('stopped');
    await start(stopped, 'w2');
    await server.ok(`mutation($id: ID!) { stopTask(id: $id) { id } }`, { id: stopped });
    acks.push({ taskId: stopped, type: 'CANCELLED', actor: 'operator' });
    await server.ok(`mutation($id: ID!) { deleteTask(id: $id) }`, { id: stopped });
    acks.push({ taskId: stopped, type: 'DELETED', actor: 'operator' });

    // Stuck twice: retried (its REQUEUED reason carries the backoff), then failed with no attempts left; one alert each.
    const stuck = await create('stuck', 2);
    await start(stuck, 'w3');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await start(stuck, 'w5');
    server.clock.advance(2 * HOUR);
    await server.ok('mutation { runMonitorSweep { ran } }');
    await until(() => receiver.accepted.length === 2);

    const running = await create('running');
    await start(running, 'w4');
    await create('pending');

    const events = await database.db.prisma.taskEvent.count();
    await until(() => cursors.filter((c) => !isLiveOnly(c)).length === events);
    // A subscriber that dropped right after the first live-only report and resumed from it: the history after
    // the entry it names is replayed, the live-only report it was away for is not (only the history is promised).
    const away = cursors.findIndex(isLiveOnly);
    const replayed: string[] = [];
    const again = server.ws();
    again.subscribe(
      { query: 'subscription($after: ID) { taskUpdated(afterEventId: $after) { id } }', variables: { after: cursors[away] } },
      { next: (m: any) => void replayed.push(m.data.taskUpdated.id), error: () => {}, complete: () => {} },
    );
    const after = cursors.slice(away + 1).filter((c) => !isLiveOnly(c)).length;
    await until(() => replayed.length === after);
    expect(replayed).toEqual(cursors.slice(away + 1).filter((c) => !isLiveOnly(c)));
    clean = {
      settings: { heartbeatTimeoutMs: 4000, intervalMs: 1000 },
      events: [],
      tasks: [],
      alerts: [],
      sweeps: [],
      received: receiver.accepted.map((r) => r.body.id),
      created,
      acks,
      subscribers: [
        { name: 'subscriber', fromStart: true, cursors },
        { name: 'resumed', fromStart: true, cursors: [...cursors.slice(0, away + 1), ...replayed] },
      ],
      silences: [{ at: Date.now(), taskId: running, silentMs: 1000 }],
      serverDeaths: [],
      outages: [],
    };
    clean = await collect();
  });
  afterAll(async () => {
    await server.stop();
    await database.close();
    await receiver.close();
  });

  it('finds nothing wrong with a real history', () => {
    expect(clean.events.length).toBeGreaterThan(10);
    expect(clean.alerts.length).toBe(2);
    expect(clean.events.filter((e) => e.taskId === ids.stuck && e.actor === 'monitor').map((e) => [e.type, e.reason?.replace(/[\d.]+s$/, 'Ns')])).toEqual([
      ['REQUEUED', 'NO_HEARTBEAT; retry in Ns'],
      ['FAILED', 'NO_HEARTBEAT'],
    ]);
    expect(clean.sweeps.length).toBe(2);
    const live = clean.subscribers[0]!.cursors.filter(isLiveOnly);
    expect(live).toHaveLength(2);
    expect(clean.subscribers[1]!.cursors.filter(isLiveOnly)).toHaveLength(1);
    expect(checkInvariants(clean)).toEqual([]);
  });

  it('holds live-only progress reports to their place in the history, once each', () => {
    const cursors = clean.subscribers[0]!.cursors;
    const live = cursors.findIndex(isLiveOnly);
    const named = cursors.indexOf(cursors[live]!.split('.').slice(0, 2).join('.'));
    const next = cursors.findIndex((c, k) => k > live && !isLiveOnly(c));
    expect(named).toBeGreaterThanOrEqual(0);
    expect(next).toBeGreaterThan(live);
    const moved = (from: number, to: number) => {
      const list = [...cursors];
      list.splice(to, 0, ...list.splice(from, 1));
      return list;
    };
    const only = (list: string[], fromStart = true) => {
      const r = clone(clean);
      r.subscribers = [{ name: 'subscriber', fromStart, cursors: list }];
      return caught(r);
    };
    const [xact, id] = cursors[live]!.split('.');
    const planted: [Invariant[], string[], boolean?][] = [
      // Before the entry it names.
      [['subscriber-order'], moved(live, named)],
      // After an entry later than the one it names.
      [['subscriber-order'], moved(live, next)],
      // Naming an entry the history does not have.
      [['subscriber-order'], cursors.map((c, k) => (k === live ? `${xact}.${BigInt(id!) + 100000n}.1` : c))],
      // Twice.
      [['subscriber-duplicate'], [...cursors.slice(0, live + 1), cursors[live]!, ...cursors.slice(live + 1)]],
      // A subscriber from now whose first message is a live-only report is owed every entry after the one it names.
      [['subscriber-missed'], [cursors[live]!, ...cursors.slice(next + 1)], false],
    ];
    expect(planted.map(([, list, fromStart]) => only(list, fromStart))).toEqual(planted.map(([invariants]) => invariants));
    // Live-only reports may be missing (a resumed subscriber was away for them); the history may not.
    expect(only(cursors.filter((c) => !isLiveOnly(c)))).toEqual([]);
  });

  it('catches each planted violation, and only it', async () => {
    const prisma = database.db.prisma;
    const planted: [Invariant, ChaosRecord][] = [];
    const plant = async (invariant: Invariant, sql: string) => {
      await prisma
        .$transaction(async (tx) => {
          await tx.$executeRawUnsafe(sql);
          const db = await readDatabase({ query: async (q) => ({ rows: await tx.$queryRawUnsafe(q) }) });
          // An entry written behind the server's back never reached the subscriber either: that is not what this plant is about.
          planted.push([invariant, { ...clean, ...db, subscribers: invariant === 'stale-write-landed' ? [] : clean.subscribers }]);
          // Rolled back, so each plant starts from the clean history.
          throw new Rollback();
        })
        .catch((e) => {
          if (!(e instanceof Rollback)) throw e;
        });
    };
    await plant('task-lost', `DELETE FROM "Task" WHERE id = '${ids.pending}'`);
    await plant('terminal-changed', `UPDATE "Task" SET status = 'FAILED' WHERE id = '${ids.done}'`);
    await plant(
      'stale-write-landed',
      `INSERT INTO "TaskEvent" ("taskId", kind, type, progress, actor, attempt, at) VALUES ('${ids.running}', 'backtest', 'PROGRESS', 60, 'w-zombie', 1, now())`,
    );
    await plant('stuck-alert', `DELETE FROM "Alert" WHERE rule = 'task.stuck'`);
    // Only the retry's alert gone: its REQUEUED entry (reason with backoff) must still count as a stuck episode.
    await plant('stuck-alert', `DELETE FROM "Alert" WHERE id = (SELECT min(id) FROM "Alert" WHERE rule = 'task.stuck')`);
    await plant(
      'sweep-overlap',
      `INSERT INTO "MonitorSweep" ("startedAt", "finishedAt", action, scanned, found, fixed, trigger) SELECT "startedAt" - interval '1 millisecond', "finishedAt" + interval '1 millisecond', action, 0, 0, 0, 'schedule' FROM "MonitorSweep" LIMIT 1`,
    );

    const record = (change: (r: ChaosRecord) => void) => {
      const r = clone(clean);
      change(r);
      return r;
    };
    const cursors = clean.subscribers[0]!.cursors;
    planted.push(
      ['stuck-alert', record((r) => (r.received = []))],
      ['acknowledged-missing', record((r) => r.acks.push({ taskId: ids.running!, type: 'CANCELLED', actor: 'operator' }))],
      ['subscriber-missed', record((r) => r.subscribers[0]!.cursors.splice(1, 1))],
      ['subscriber-order', record((r) => (r.subscribers[0]!.cursors = [cursors[0]!, cursors[2]!, cursors[1]!, ...cursors.slice(3)]))],
      ['subscriber-duplicate', record((r) => r.subscribers[0]!.cursors.splice(2, 0, cursors[1]!))],
      ['sweep-not-resumed', record((r) => r.serverDeaths.push(Math.max(...r.sweeps.map((s) => s.finishedAt)) + 1000))],
      ['running-past-detection', record((r) => r.silences.push({ at: Date.now(), taskId: ids.running!, silentMs: 20_000 }))],
    );
    const expected = [
      'task-lost',
      'terminal-changed',
      'stale-write-landed',
      'stuck-alert',
      'stuck-alert',
      'sweep-overlap',
      'stuck-alert',
      'acknowledged-missing',
      'subscriber-missed',
      'subscriber-order',
      'subscriber-duplicate',
      'sweep-not-resumed',
      'running-past-detection',
    ];
    expect(planted.map(([invariant, r]) => [invariant, caught(r)])).toEqual(expected.map((invariant) => [invariant, [invariant]]));
  });
});

class Rollback extends Error {}

/** A progress report the sampled history did not keep: `<xact>.<id>.<n>`. */
const isLiveOnly = (cursor: string) => cursor.split('.').length === 3;
