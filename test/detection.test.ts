// Stuck detection on real time, with real worker processes: how soon a dead or
// frozen worker is found, and that healthy ones never are. Short settings:
// a sweep every second, 3 s of silence is NO_HEARTBEAT.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, it } from 'vitest';
import type { StuckAlert } from '../src/events.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase, useTestDatabase } from './support/databases.js';
import { spawnServer } from './support/process.js';
import { until } from './support/receiver.js';
import { startTestServer, type TestServer } from './support/server.js';

const INTERVAL_S = 1;
const HEARTBEAT_S = 3;
const STALL_S = 6;
const SHORT = { MONITOR_ENABLED: 'true', MONITOR_INTERVAL: `${INTERVAL_S}s`, HEARTBEAT_TIMEOUT: `${HEARTBEAT_S}s`, STALL_TIMEOUT: `${STALL_S}s` };
const workerScript = fileURLToPath(new URL('./support/worker-process.ts', import.meta.url));

interface WorkerMessage {
  type: 'started' | 'frozen' | 'completed' | 'lost';
  taskId: string;
  reason?: string;
}

/** A worker process running the SDK (test/support/worker-process.ts); collects what it reports. */
function startWorker(url: string, env: Record<string, string>) {
  const messages: WorkerMessage[] = [];
  const child: ChildProcess = fork(workerScript, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TASKWARDEN_URL: url, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (message) => messages.push(message as WorkerMessage));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    messages,
    of: (type: WorkerMessage['type']) => messages.filter((m) => m.type === type),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
type WorkerProcess = ReturnType<typeof startWorker>;

describeEachDatabase('detection on real time [%s]', (kind) => {
  const database = useTestDatabase(kind, { timeout: 120_000 });
  let server: TestServer;
  const workers: WorkerProcess[] = [];

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await server?.stop();
  }, 120_000);

  const create = async (name: string, params: Record<string, unknown> = {}, kindName = 'backtest') =>
    (await server.ok(`mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`, { input: { name, kind: kindName, params } })).createTask
      .id as string;
  const historyOf = async (id: string) =>
    (await server.ok(`query($id: ID!) { task(id: $id) { status lastHeartbeatAt lastProgressAt events { type actor reason } } }`, { id })).task;

  it('finds a worker killed with SIGKILL (NO_HEARTBEAT) within heartbeat timeout + interval + 1 s', { timeout: 90_000 }, async () => {
    // Its phase may stall for long: only silence can make it stuck here.
    server = await startTestServer(database, { ...SHORT, STALL_TIMEOUT: '10m' }, { realTime: true });
    const alerts = server.taskwarden.services.bus.subscribe('task:stuck');
    const id = await create('SMA cross AAPL 2015-2024');
    const worker = startWorker(server.url, { MODE: 'freeze' });
    workers.push(worker);
    await until(() => worker.of('frozen').length === 1, 30_000);
    // Let it beat a few times, so the kill lands at some point between two heartbeats.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await historyOf(id)).status).toBe('RUNNING');
    worker.child.kill('SIGKILL');
    const killedAt = Date.now();

    const alert = (await alerts.next()).value as StuckAlert;
    const delay = alert.detectedAt.getTime() - killedAt;
    console.log(`[${kind}] SIGKILL -> NO_HEARTBEAT in ${(delay / 1000).toFixed(2)} s (bound ${HEARTBEAT_S + INTERVAL_S + 1} s)`);
    expect(alert).toMatchObject({ reason: 'NO_HEARTBEAT', actionTaken: 'cancel', task: { id, status: 'CANCELLED' } });
    expect(delay).toBeLessThanOrEqual((HEARTBEAT_S + INTERVAL_S + 1) * 1000);
    expect((await historyOf(id)).events.at(-1)).toEqual({ type: 'CANCELLED', actor: 'monitor', reason: 'NO_HEARTBEAT' });
    await alerts.return?.();
  });

  it('finds a heartbeating worker frozen at 90% (NO_PROGRESS) within stall timeout + interval + 1 s, never NO_HEARTBEAT', { timeout: 90_000 }, async () => {
    server = await startTestServer(database, SHORT, { realTime: true });
    const alerts = server.taskwarden.services.bus.subscribe('task:stuck');
    const id = await create('Momentum 12-1 NVDA 2018-2022');
    const worker = startWorker(server.url, { MODE: 'freeze' });
    workers.push(worker);

    const alert = (await alerts.next()).value as StuckAlert;
    const { lastProgressAt } = await historyOf(id);
    const delay = alert.detectedAt.getTime() - new Date(lastProgressAt).getTime();
    console.log(`[${kind}] frozen at 90% -> NO_PROGRESS ${(delay / 1000).toFixed(2)} s after its last progress (bound ${STALL_S + INTERVAL_S + 1} s)`);
    // The first verdict on it is NO_PROGRESS, and the monitor cancelled it then: it was never NO_HEARTBEAT.
    expect(alert).toMatchObject({ reason: 'NO_PROGRESS', task: { id, status: 'CANCELLED', progress: 90, message: 'saving results' } });
    expect(delay).toBeLessThanOrEqual((STALL_S + INTERVAL_S + 1) * 1000);
    const { events } = await historyOf(id);
    expect(events.filter((e: { actor: string }) => e.actor === 'monitor')).toEqual([{ type: 'CANCELLED', actor: 'monitor', reason: 'NO_PROGRESS' }]);
    // The worker heard it lost the task.
    await until(() => worker.of('lost').length === 1, 10_000);
    await alerts.return?.();
  });

  it('gives no stuck verdict to 200 healthy tasks over 30 s while they keep the server busy with progress', { timeout: 240_000 }, async () => {
    server = await startTestServer(database, SHORT, { realTime: true });
    const verdicts: StuckAlert[] = [];
    const alerts = server.taskwarden.services.bus.subscribe('task:stuck');
    void (async () => {
      for await (const alert of alerts) verdicts.push(alert as StuckAlert);
    })();
    // They run for longer than the test: every one is RUNNING and healthy throughout.
    for (let i = 0; i < 200; i++) await create(`healthy ${i}`, { seconds: 600 });
    // Each task reports progress every 200 ms (the SDK sends at most one a second per task) and heartbeats
    // at the lease's pace (a second, for a 3 s timeout): a few hundred writes a second on two cores.
    const worker = startWorker(server.url, { MODE: 'progress', CONCURRENCY: '200', PROGRESS_INTERVAL: '1000' });
    workers.push(worker);
    await until(() => worker.of('started').length === 200, 180_000);
    const watchedFrom = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const { monitor } = await server.ok('{ monitor { lastSweepAt } }');
    console.log(`[${kind}] 200 healthy tasks under progress load: ${verdicts.length} stuck verdicts in 30 s`);
    expect(verdicts).toEqual([]);
    expect(worker.of('lost')).toEqual([]);
    // The monitor was sweeping all along, not idle.
    expect(new Date(monitor.lastSweepAt).getTime()).toBeGreaterThan(watchedFrom + 25_000);
    const running = await server.taskwarden.services.prisma.task.count({ where: { status: 'RUNNING' } });
    expect(running).toBe(200);
    await alerts.return?.();
  });

  it('beats at the pace the lease asks for, counted at the server', { timeout: 90_000 }, async () => {
    // Only the beats are counted here: no monitor to end the tasks.
    server = await startTestServer(database, { ...SHORT, MONITOR_ENABLED: 'false' }, { realTime: true });
    const prisma = server.taskwarden.services.prisma;
    const slow = (await server.ok(`mutation { createTask(input: { name: "slow beats", kind: "beat", heartbeatTimeoutSeconds: 6 }) { id } }`)).createTask.id;
    const fast = (await server.ok(`mutation { createTask(input: { name: "fast beats", kind: "beat", heartbeatTimeoutSeconds: 1.5 }) { id } }`)).createTask.id;
    const worker = startWorker(server.url, { MODE: 'freeze', KIND: 'beat', CONCURRENCY: '2' });
    workers.push(worker);
    await until(() => worker.of('frozen').length === 2, 30_000);
    // Every heartbeat moves lastHeartbeatAt: sample it often and count the moves.
    const seen = new Map<string, Set<number>>([
      [slow, new Set()],
      [fast, new Set()],
    ]);
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      for (const task of await prisma.task.findMany({ where: { id: { in: [slow, fast] } } })) seen.get(task.id)!.add(task.lastHeartbeatAt!.getTime());
      await new Promise((r) => setTimeout(r, 50));
    }
    const gaps = (id: string) => {
      const times = [...seen.get(id)!].sort((a, b) => a - b);
      return times.slice(1).map((t, i) => t - times[i]!);
    };
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`[${kind}] heartbeat gaps: asked 2000 ms -> median ${median(gaps(slow))} ms; asked 500 ms -> median ${median(gaps(fast))} ms`);
    // Timers fire late under load, never early: a beat every ~2 s and every ~0.5 s, not the old fixed 10 s.
    expect(median(gaps(slow))).toBeGreaterThanOrEqual(1900);
    expect(median(gaps(slow))).toBeLessThan(3000);
    expect(median(gaps(fast))).toBeGreaterThanOrEqual(450);
    expect(median(gaps(fast))).toBeLessThan(1000);
  });
});

describeEachDatabase('a server restart [%s]', (kind) => {
  let database: TestDatabase | undefined;
  const dirs: string[] = [];
  afterAll(async () => {
    await database?.close();
    dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  });

  // On both databases: PGlite's data directory survives the kill as Postgres' does. (It once ran on
  // Postgres only, which left the PGlite describe empty and failed CI with "No test found".)
  it('is no outage for workers: killed, back 10 s later on the same data, none of their tasks is stuck', { timeout: 300_000 }, async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    let target: Record<string, string>;
    if (kind === 'postgres') {
      database = await openTestDatabase('postgres');
      target = { DATABASE_URL: (database.target as { url: string }).url };
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'taskwarden-'));
      dirs.push(dir);
      target = { DATA_DIR: dir };
    }
    const env = { ...target, ...SHORT, STALL_TIMEOUT: '60s', PORT: String(port) };
    const post = async (url: string, query: string) =>
      (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })).json()) as any;

    const first = await spawnServer(env, 90_000);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(
        (await post(first.url, `mutation { createTask(input: { name: "through a restart ${i}", params: { seconds: 25 } }) { id } }`)).data.createTask.id,
      );
    const worker = startWorker(first.url, { MODE: 'progress', CONCURRENCY: '20' });
    try {
      await until(() => worker.of('started').length === 20, 120_000);
      await new Promise((r) => setTimeout(r, 2_000));
      first.child.kill('SIGKILL');
      await first.exited;
      await new Promise((r) => setTimeout(r, 10_000));
      const second = await spawnServer(env, 90_000);
      try {
        // Generous: the restarted server opens the killed one's data (PGlite replays its WAL), on a machine shared with other suites.
        await until(() => worker.of('completed').length === 20, 150_000);
        const { data } = await post(second.url, '{ tasks(first: 50) { edges { node { status events { type actor reason } } } } monitor { lastSweepAt } }');
        const tasks = data.tasks.edges.map((e: any) => e.node);
        expect(tasks.map((t: any) => t.status)).toEqual(Array(20).fill('COMPLETED'));
        expect(tasks.flatMap((t: any) => t.events.filter((e: any) => e.actor === 'monitor'))).toEqual([]);
        expect(worker.of('lost')).toEqual([]);
        expect(data.monitor.lastSweepAt).not.toBeNull();
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      await worker.stop();
    }
  });
});
