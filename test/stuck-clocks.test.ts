import pino from 'pino';
import { beforeEach, expect, it } from 'vitest';
import type { MonitorSettings } from '../src/monitor/monitor.js';
import { openDatabase } from '../src/db/open.js';
import { createServices } from '../src/services.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { startProxy } from './support/proxy.js';
import { useTestServer } from './support/server.js';
import { taskHarness } from './support/tasks.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** The defaults: silence is judged in minutes, a stalled phase in an hour. */
const clocks: Partial<MonitorSettings> = { heartbeatTimeoutMs: 2 * MINUTE, stallTimeoutMs: 60 * MINUTE };

describeEachDatabase('the heartbeat and stall clocks [%s]', (kind) => {
  let h: ReturnType<typeof taskHarness>;
  let names = new Map<string, string>();

  const database = useTestDatabase(kind, { reset: false });
  beforeEach(async () => {
    await database.reset();
    h = taskHarness(database, {}, clocks);
  });

  const running = async (name: string, own: { heartbeatTimeoutSeconds?: number; stallTimeoutMinutes?: number } = {}) => {
    const created = await h.tasks.create({ name, ...own });
    return { id: created.id, leaseToken: (await h.tasks.start(created.id, 'w')).leaseToken };
  };
  const stuckNow = async (overrideMs?: number) =>
    (await h.tasks.stuck(h.services.monitor.rules(overrideMs))).map((s) => `${names.get(s.task.id)}:${s.verdict.reason}`).sort();

  it("judges silence by the task's own heartbeat timeout, shorter or longer than the configured one", async () => {
    const quick = await running('quick', { heartbeatTimeoutSeconds: 30 });
    const plain = await running('plain');
    const patient = await running('patient', { heartbeatTimeoutSeconds: 600 });
    names = new Map([
      [quick.id, 'quick'],
      [plain.id, 'plain'],
      [patient.id, 'patient'],
    ]);

    h.clock.advance(31 * SECOND);
    expect(await stuckNow()).toEqual(['quick:NO_HEARTBEAT']);
    h.clock.advance(90 * SECOND);
    expect(await stuckNow()).toEqual(['plain:NO_HEARTBEAT', 'quick:NO_HEARTBEAT']);
    h.clock.advance(7 * MINUTE);
    expect(await stuckNow()).toEqual(['plain:NO_HEARTBEAT', 'quick:NO_HEARTBEAT']);
    h.clock.advance(MINUTE);
    expect(await stuckNow()).toEqual(['patient:NO_HEARTBEAT', 'plain:NO_HEARTBEAT', 'quick:NO_HEARTBEAT']);
  });

  it("judges a stalled phase by the task's own stall timeout, shorter or longer than the configured one", async () => {
    const tasks = {
      short: await running('short', { stallTimeoutMinutes: 5 }),
      plain: await running('plain'),
      long: await running('long', { stallTimeoutMinutes: 120 }),
    };
    names = new Map(Object.entries(tasks).map(([name, t]) => [t.id, name]));
    for (const t of Object.values(tasks)) await h.tasks.reportProgress(t.id, t.leaseToken, { progress: 90, message: 'saving results' });
    const beatFor = async (minutes: number) => {
      for (let m = 0; m < minutes; m++) {
        h.clock.advance(MINUTE);
        for (const t of Object.values(tasks)) await h.tasks.reportProgress(t.id, t.leaseToken);
      }
    };
    await beatFor(4);
    expect(await stuckNow()).toEqual([]);
    await beatFor(2);
    expect(await stuckNow()).toEqual(['short:NO_PROGRESS']);
    await beatFor(55);
    expect(await stuckNow()).toEqual(['plain:NO_PROGRESS', 'short:NO_PROGRESS']);
    await beatFor(60);
    expect(await stuckNow()).toEqual(['long:NO_PROGRESS', 'plain:NO_PROGRESS', 'short:NO_PROGRESS']);
  });

  it("lets an operator's timeout replace every clock for one call, the task's own included", async () => {
    const quick = await running('quick', { heartbeatTimeoutSeconds: 30 });
    const patient = await running('patient', { heartbeatTimeoutSeconds: 3600 });
    names = new Map([
      [quick.id, 'quick'],
      [patient.id, 'patient'],
    ]);
    h.clock.advance(5 * MINUTE);
    expect(await stuckNow()).toEqual(['quick:NO_HEARTBEAT']);
    expect(await stuckNow(10 * MINUTE)).toEqual([]);
    h.clock.advance(6 * MINUTE);
    expect(await stuckNow(10 * MINUTE)).toEqual(['patient:NO_HEARTBEAT', 'quick:NO_HEARTBEAT']);
    expect(await stuckNow()).toEqual(['quick:NO_HEARTBEAT']);
  });

  it('calls a worker that died just after a heartbeat dead, not frozen, when its stall clock is the shorter one', async () => {
    const died = await running('died', { stallTimeoutMinutes: 1 });
    const frozen = await running('frozen', { stallTimeoutMinutes: 1 });
    names = new Map([
      [died.id, 'died'],
      [frozen.id, 'frozen'],
    ]);
    for (const t of [died, frozen]) await h.tasks.reportProgress(t.id, t.leaseToken, { progress: 50 });
    h.clock.advance(10 * SECOND);
    await h.tasks.reportProgress(died.id, died.leaseToken); // its last sign of life
    for (let s = 10; s < 70; s += 20) {
      await h.tasks.reportProgress(frozen.id, frozen.leaseToken);
      h.clock.advance(20 * SECOND);
    }
    await h.tasks.reportProgress(frozen.id, frozen.leaseToken);
    expect(await stuckNow()).toEqual(['frozen:NO_PROGRESS']);
    h.clock.advance(61 * SECOND);
    expect(await stuckNow()).toEqual(['died:NO_HEARTBEAT', 'frozen:NO_PROGRESS']);
  });

  it('holds no silence against a task until the heartbeat timeout has passed since the server started', async () => {
    const task = await running('outlived a restart');
    names = new Map([[task.id, 'task']]);
    h.clock.advance(10 * MINUTE);
    expect(await stuckNow()).toEqual(['task:NO_HEARTBEAT']);
    // A new server on the same data: it could not hear the worker before it started.
    const restarted = createServices({
      prisma: h.prisma,
      clock: h.clock,
      bus: h.bus,
      monitor: { ...h.services.monitor.settings, ...clocks },
      log: pino({ level: 'silent' }),
    });
    expect(restarted.monitor.status().graceUntil).toEqual(new Date(h.clock.now().getTime() + 2 * MINUTE));
    expect((await restarted.monitor.sweepNow()).found).toEqual([]);
    h.clock.advance(2 * MINUTE);
    expect((await restarted.monitor.sweepNow()).found).toEqual([]);
    h.clock.advance(1);
    expect(restarted.monitor.status().graceUntil).toBeNull();
    const report = await restarted.monitor.sweepNow();
    expect(report.handled).toMatchObject([{ verdict: { reason: 'NO_HEARTBEAT', stuckForMs: 12 * MINUTE + 1 }, outcome: 'cancel' }]);
  });

  if (kind === 'postgres') {
    it('holds no silence against a task until the heartbeat timeout has passed since the database came back', async () => {
      const url = new URL((database.target as { url: string }).url);
      const proxy = await startProxy({ host: url.hostname, port: Number(url.port || 5432) });
      url.port = String(proxy.port);
      const db = await openDatabase({ url: url.toString() }, { migrate: false });
      try {
        const settings = { enabled: true, intervalMs: MINUTE, action: 'cancel', ...clocks } as MonitorSettings;
        // Every service on the cut-off connection: the sweep reads and writes through the task service and its unit of work.
        const { monitor } = createServices({ prisma: db.prisma, clock: h.clock, bus: h.bus, monitor: settings, log: pino({ level: 'silent' }) });
        const task = await running('cut off');
        h.clock.advance(3 * MINUTE);
        await proxy.cut();
        await expect(monitor.sweepNow()).rejects.toThrow();
        h.clock.advance(7 * MINUTE); // the outage: workers' heartbeats cannot land
        await expect(monitor.sweepNow()).rejects.toThrow();
        expect(monitor.status().consecutiveFailures).toBe(2);
        await proxy.restore();
        const back = h.clock.now();
        // Silent for 10 minutes, but the server could not have heard it: not stuck yet.
        expect((await monitor.sweepNow()).found).toEqual([]);
        expect(monitor.status().graceUntil).toEqual(new Date(back.getTime() + 2 * MINUTE));
        h.clock.advance(2 * MINUTE + 1);
        const report = await monitor.sweepNow();
        expect(report.handled).toMatchObject([{ task: { id: task.id, status: 'CANCELLED' }, verdict: { reason: 'NO_HEARTBEAT' } }]);
        // How late it was found is measured from the end of the grace, not from the last heartbeat.
        expect(report.handled[0]!.verdict.dueAt).toEqual(new Date(back.getTime() + 2 * MINUTE));
        await monitor.stop();
      } finally {
        await db.close();
        await proxy.close();
      }
    });
  }
});

describeEachDatabase('clocks through the API [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const server = useTestServer(database, { HEARTBEAT_TIMEOUT: '90s', STALL_TIMEOUT: '20m' });

  const create = async (input: Record<string, unknown>) =>
    (await server.ok(`mutation($input: CreateTaskInput!) { createTask(input: $input) { id heartbeatTimeoutSeconds stallTimeoutMinutes } }`, { input }))
      .createTask;

  it('stores per-task clocks, readable on Task, and refuses bad ones with BAD_USER_INPUT', async () => {
    const own = await create({ name: 'own clocks', heartbeatTimeoutSeconds: 6, stallTimeoutMinutes: 180 });
    expect(own).toMatchObject({ heartbeatTimeoutSeconds: 6, stallTimeoutMinutes: 180 });
    expect(await create({ name: 'configured clocks' })).toMatchObject({ heartbeatTimeoutSeconds: null, stallTimeoutMinutes: null });
    for (const bad of [{ heartbeatTimeoutSeconds: 0.5 }, { heartbeatTimeoutSeconds: 200_000 }, { stallTimeoutMinutes: -1 }, { stallTimeoutMinutes: 0 }]) {
      const result = await server.gql(`mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`, { input: { name: 'bad', ...bad } });
      expect(result.errors?.[0]?.extensions?.code, JSON.stringify(bad)).toBe('BAD_USER_INPUT');
    }
    expect((await server.ok('{ tasks { totalCount } }')).tasks.totalCount).toBe(2);
  });

  it("asks workers to beat at a third of the task's heartbeat timeout", async () => {
    const plain = await create({ name: 'plain' });
    const quick = await create({ name: 'quick', heartbeatTimeoutSeconds: 6 });
    const started = await server.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { heartbeatIntervalSeconds } }`, { id: quick.id });
    expect(started.startTask.heartbeatIntervalSeconds).toBe(2);
    const claimed = await server.ok(`mutation { claimTask(workerId: "w") { heartbeatIntervalSeconds task { id } } }`);
    expect(claimed.claimTask).toEqual({ heartbeatIntervalSeconds: 30, task: { id: plain.id } });
  });

  it('shows the clocks and the grace on monitor, and how late a detection was on monitor and /metrics', async () => {
    const fresh = await server.ok('{ monitor { heartbeatTimeoutSeconds stallTimeoutMinutes graceUntil lastDetectionDelaySeconds } }');
    expect(fresh.monitor).toMatchObject({
      heartbeatTimeoutSeconds: 90,
      stallTimeoutMinutes: 20,
      graceUntil: expect.any(String),
      lastDetectionDelaySeconds: null,
    });
    const { id } = await create({ name: 'goes silent' });
    await server.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id });
    server.clock.advance(105 * SECOND);
    const sweep = await server.ok('mutation { runMonitorSweep { timeoutMinutes found { id stuckReason } } }');
    expect(sweep.runMonitorSweep).toEqual({ timeoutMinutes: null, found: [{ id, stuckReason: 'NO_HEARTBEAT' }] });
    const after = await server.ok('{ monitor { graceUntil lastDetectionDelaySeconds } }');
    expect(after.monitor).toEqual({ graceUntil: null, lastDetectionDelaySeconds: 15 });

    const metrics = await (await fetch(new URL('/metrics', server.url))).text();
    expect(metrics).toContain('# TYPE taskwarden_stuck_detection_delay_seconds histogram');
    expect(metrics).toMatch(/taskwarden_stuck_detection_delay_seconds_count\{reason="NO_HEARTBEAT"\} 1\n/);
    expect(metrics).toMatch(/taskwarden_stuck_detection_delay_seconds_sum\{reason="NO_HEARTBEAT"\} 15\n/);
  });
});
