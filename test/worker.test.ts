import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTaskwardenClient, createWorker, type Worker, type WorkerOptions } from '../src/worker/index.js';
import { describeEachDatabase, openTestDatabase, useTestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

describeEachDatabase('the worker SDK [%s]', (kind) => {
  const database = useTestDatabase(kind);
  let server: TestServer;
  const workers: Worker[] = [];
  const quiet = pino({ level: 'silent' });

  beforeEach(async () => {
    server = await startTestServer(database, {}, { realTime: true });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await server.stop();
  });

  const client = () => createTaskwardenClient({ url: server.url });
  const worker = (options: Partial<WorkerOptions> & Pick<WorkerOptions, 'handler'>) => {
    const w = createWorker({ url: server.url, logger: quiet, handleSignals: false, pollInterval: 50, maxPollInterval: 200, ...options });
    workers.push(w);
    return w;
  };
  const task = async (id: string) => (await client().getTask(id))!;
  const until = async (check: () => Promise<boolean> | boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('completes a task with what the handler returns', async () => {
    const created = await client().createTask({ name: 'SMA cross', params: { fast: 10 } });
    worker({
      workerId: 'w-ok',
      handler: async (t, ctx) => {
        ctx.progress(50, 'simulating');
        return { sharpe: 1.5, params: t.params };
      },
    });
    await until(async () => (await task(created.id)).status === 'COMPLETED');
    const done = await task(created.id);
    expect(done).toMatchObject({ status: 'COMPLETED', progress: 100, workerId: 'w-ok', result: { sharpe: 1.5, params: { fast: 10 } } });
  });

  it('fails a task whose handler throws, with the error', async () => {
    const created = await client().createTask({ name: 'broken' });
    worker({
      handler: () => {
        throw new RangeError('window must be positive');
      },
    });
    await until(async () => (await task(created.id)).status === 'FAILED');
    expect((await task(created.id)).error).toMatch(/^RangeError: window must be positive/);
    const events = (await task(created.id)).events;
    expect(events.at(-1)).toMatchObject({ type: 'FAILED', reason: 'RangeError: window must be positive' });
  });

  it('heartbeats on its own while a handler that never reports runs', async () => {
    const created = await client().createTask({ name: 'silent' });
    let release!: () => void;
    worker({ heartbeatInterval: 100, handler: () => new Promise<void>((r) => (release = r)) });
    await until(async () => (await task(created.id)).status === 'RUNNING');
    const first = (await task(created.id)).lastHeartbeatAt!;
    await until(async () => new Date((await task(created.id)).lastHeartbeatAt!).getTime() >= new Date(first).getTime() + 250);
    const running = await task(created.id);
    expect(running.progress).toBe(0); // heartbeats are not progress
    release();
    await until(async () => (await task(created.id)).status === 'COMPLETED');
  });

  it('aborts the handler when the task is stopped elsewhere, and writes nothing afterwards', async () => {
    const created = await client().createTask({ name: 'to stop' });
    let aborted: unknown;
    worker({
      handler: (_t, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = ctx.signal.reason;
            resolve({ wrote: 'after abort' });
          });
        }),
    });
    await until(async () => (await task(created.id)).status === 'RUNNING');
    await client().stopTask(created.id, 'no longer needed');
    await until(() => aborted !== undefined, 5000);
    expect(String((aborted as Error).message)).toContain('cancelled by operator');
    await new Promise((r) => setTimeout(r, 200));
    expect(await task(created.id)).toMatchObject({ status: 'CANCELLED', result: null });
  });

  it('leaves a zombie nothing to write: its task requeued and running under a new lease, its late result is sent and refused', async () => {
    const created = await client().createTask({ name: 'zombie' });
    let finish!: (value: unknown) => void;
    // This handler ignores its signal, like a worker frozen in a long computation; without the
    // subscription and with no heartbeat due, nothing tells it that its task was taken away.
    const zombie = worker({ workerId: 'zombie', subscribe: false, concurrency: 1, heartbeatInterval: 60_000, handler: () => new Promise((r) => (finish = r)) });
    const outcome = new Promise<{ lost?: { code?: string }; completed?: unknown }>((resolve) => {
      zombie.on('task:lost', (_task, info) => resolve({ lost: info }));
      zombie.on('task:completed', (_task, result) => resolve({ completed: result }));
    });
    await until(async () => (await task(created.id)).status === 'RUNNING');
    // The monitor's retry, run by an operator with a very short timeout: the task goes back to PENDING.
    await new Promise((r) => setTimeout(r, 100));
    await client().cleanupStuck({ timeoutMinutes: 0.001, autoFix: true, action: 'RETRY' });
    const replacement = await client().startTask(created.id, 'replacement');
    expect(await task(created.id)).toMatchObject({ status: 'RUNNING', workerId: 'replacement', attempt: 2 });

    finish({ stale: true });
    // The late completion reached the server, which refused it.
    expect(await outcome).toEqual({ lost: expect.objectContaining({ code: 'LEASE_MISMATCH' }) });
    expect(await task(created.id)).toMatchObject({ status: 'RUNNING', workerId: 'replacement', result: null });
    await client().completeTask(created.id, replacement.leaseToken, { fresh: true });
    expect(await task(created.id)).toMatchObject({ status: 'COMPLETED', result: { fresh: true } });
  });

  it('runs at most `concurrency` handlers at once', async () => {
    for (let i = 0; i < 6; i++) await client().createTask({ name: `t${i}` });
    let now = 0;
    let peak = 0;
    worker({
      concurrency: 2,
      handler: async () => {
        now++;
        peak = Math.max(peak, now);
        await new Promise((r) => setTimeout(r, 120));
        now--;
      },
    });
    await until(async () => (await client().stats()).taskStats.completed === 6);
    expect(peak).toBe(2);
  });

  it('coalesces a tight progress loop into a few writes, ending with the latest value', async () => {
    const created = await client().createTask({ name: 'tight loop' });
    let last = '';
    worker({
      progressInterval: 100,
      handler: async (_t, ctx) => {
        const start = Date.now();
        for (let i = 0; Date.now() - start < 500; i++) {
          last = `step ${i}`;
          ctx.progress(Math.min(99, i / 1000), last);
          if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 150));
      },
    });
    await until(async () => (await task(created.id)).status === 'COMPLETED');
    const progressEvents = (await task(created.id)).events.filter((e) => e.type === 'PROGRESS');
    expect(progressEvents.length).toBeGreaterThan(1);
    expect(progressEvents.length).toBeLessThanOrEqual(8); // ~500 ms at one write per 100 ms, whatever the loop's pace
    expect(progressEvents.at(-1)!.message).toBe(last);
  });

  it('drains on stop(): finishes what it can within the deadline, hands the rest back, claims nothing new', async () => {
    const quick = await client().createTask({ name: 'quick' });
    const slow = await client().createTask({ name: 'slow' });
    let aborted = false;
    // Both handlers start before either can end: on a loaded machine the second claim can come later than
    // the quick task's 150 ms, and a poll for "two running" would then never see them together.
    let started = 0;
    let bothStarted!: () => void;
    const both = new Promise<void>((r) => (bothStarted = r));
    const w = worker({
      concurrency: 2,
      drainTimeout: 3_000, // room for the quick task's completion on a busy machine; the slow one never ends by itself
      handler: async (t, ctx) => {
        if (++started === 2) bothStarted();
        await both;
        if (t.name === 'quick') return new Promise((r) => setTimeout(() => r('done'), 150));
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => ((aborted = true), r())));
      },
    });
    await both;
    const later = await client().createTask({ name: 'created while stopping' });
    await w.stop();
    expect(await task(quick.id)).toMatchObject({ status: 'COMPLETED' });
    expect(await task(slow.id)).toMatchObject({ status: 'PENDING', workerId: null });
    expect((await task(slow.id)).events.at(-1)).toMatchObject({ type: 'REQUEUED', reason: 'worker stopped before the task finished' });
    expect(aborted).toBe(true);
    expect((await task(later.id)).status).toBe('PENDING');
  });

  it('keeps trying to complete through a server outage, then completes', async () => {
    const created = await client().createTask({ name: 'through an outage' });
    const port = new URL(server.url).port;
    let finish!: (value: unknown) => void;
    worker({ handler: () => new Promise((r) => (finish = r)) });
    await until(async () => (await task(created.id)).status === 'RUNNING');
    await server.stop();
    finish({ survived: true });
    await new Promise((r) => setTimeout(r, 700));
    server = await startTestServer(database, { PORT: port }, { realTime: true });
    await until(async () => (await task(created.id)).status === 'COMPLETED', 20_000);
    expect((await task(created.id)).result).toEqual({ survived: true });
  });
});

describe('a worker process on SIGTERM', () => {
  it('drains: finishes its running task, then exits', { timeout: 60_000 }, async () => {
    const { fork } = await import('node:child_process');
    const database = await openTestDatabase('pglite');
    const server = await startTestServer(database, {}, { realTime: true });
    const client = createTaskwardenClient({ url: server.url });
    const created = await client.createTask({ name: 'drained', params: { scenario: 'ok', seconds: 2, symbol: 'SPY' } });
    const child = fork('src/demo/worker-process.ts', [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TASKWARDEN_URL: server.url, WORKER_ID: 'drainer' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve) => child.on('message', (m: { type: string }) => m.type === 'started' && resolve()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM'); // it re-raised the signal after draining
    expect(await client.getTask(created.id)).toMatchObject({ status: 'COMPLETED', workerId: 'drainer' });
    await server.stop();
    await database.close();
  });
});

// Found by the chaos suite (RELIABILITY.md): a worker's subscription may hear of its task late, after its
// own claim (its connection moved to an instance whose feed is behind, or an older transaction held the
// entry back). A CREATED, or the REQUEUED of the attempt before, is not a change to the worker's lease.
describe.runIf(process.env.TEST_DATABASE_URL)('a worker that hears of its task after claiming it [postgres]', () => {
  it('keeps the task: entries from before its attempt do not take it away', { timeout: 30_000 }, async () => {
    const database = await openTestDatabase('postgres');
    const server = await startTestServer(database, {}, { realTime: true });
    const client = createTaskwardenClient({ url: server.url });
    const lost: string[] = [];
    const worker = createWorker({
      url: server.url,
      workerId: 'late-listener',
      concurrency: 1,
      pollInterval: 50,
      maxPollInterval: 100,
      handleSignals: false,
      logger: pino({ level: 'silent' }),
      handler: async (_task, ctx) => {
        const until = Date.now() + 1500;
        while (Date.now() < until && !ctx.signal.aborted) {
          ctx.progress(((1500 - (until - Date.now())) / 1500) * 100);
          await new Promise((r) => setTimeout(r, 100));
        }
        if (ctx.signal.aborted) throw ctx.signal.reason;
        return { kept: true };
      },
    });
    worker.on('task:lost', (_task, info) => void lost.push(info.reason));
    try {
      // Its subscription is live (it follows the history from here) before anything is written.
      await expect.poll(() => server.taskwarden.services.bus.subscriberCount('task:settled'), { timeout: 10_000 }).toBe(1);
      // An older transaction holds the history back: entries after it are not handed out until it ends.
      const holder = await database.connect!();
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      const created = await client.createTask({ name: 'heard of late' });
      const deadline = Date.now() + 10_000;
      const status = async () => (await database.db.prisma.task.findUniqueOrThrow({ where: { id: created.id } })).status;
      while ((await status()) !== 'RUNNING') {
        if (Date.now() > deadline) throw new Error('the worker did not claim the task');
        await new Promise((r) => setTimeout(r, 25));
      }
      // Claimed before its subscription heard of the task at all; now it hears CREATED, then its own STARTED.
      await holder.query('COMMIT');
      await holder.end();
      while (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(await status())) {
        if (Date.now() > deadline + 10_000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(lost).toEqual([]);
      expect(await client.getTask(created.id)).toMatchObject({ status: 'COMPLETED', workerId: 'late-listener', result: { kept: true } });
    } finally {
      await worker.stop();
      await server.stop();
      await database.close();
    }
  });
});
