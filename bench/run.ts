// `npm run bench`: Taskwarden's hot paths beside the tools a user would pick instead, in one run on
// one machine: a bare graphql-yoga server, BullMQ on the local Redis, a raw `ws` broadcast. Prints
// the figures and the ratios, and rewrites its own section of BENCHMARKS.md (between the hot-path
// markers; other sections, such as `npm run bench:scale`'s, are left as they are).
//
// Needs the machine's PostgreSQL and Redis: BENCH_DATABASE_URL (default
// postgres://root@127.0.0.1:5432/taskwarden_bench, created when missing; never a database tests use)
// and BENCH_REDIS_URL (default redis://127.0.0.1:6379; BullMQ's keys go under a prefix of its own).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import WebSocket from 'ws';
import { createWorker } from '../src/worker/index.js';
import { manualClock } from '../src/clock.js';
import { openDatabase } from '../src/db/open.js';
import { createEventBus } from '../src/events.js';
import { sweep } from '../src/monitor/sweep.js';
import { createServices } from '../src/services.js';
import { oneTimeout } from '../src/tasks/stuck.js';
import { quantile, round, selfTimeByModule } from './stats.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    'batch-tasks': { type: 'string', default: '1000' },
    fanout: { type: 'string', default: '1000,5000' },
    changes: { type: 'string', default: '20' },
    output: { type: 'string', default: 'BENCHMARKS.md' },
    'no-write': { type: 'boolean', default: false },
    /** Quick look at some shapes only (comma-separated: http, loop, bullmq, batch, fanout, profile, sweep); writes nothing. */
    only: { type: 'string' },
    /** Which shape the profiled server runs: loop (default), batch, or fanout (to the largest --fanout count). */
    'profile-shape': { type: 'string', default: 'loop' },
  },
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const BATCH_TASKS = Number(args['batch-tasks']);
const FANOUT = args.fanout!.split(',').map(Number);
const CHANGES = Number(args.changes);
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const runs = (shape: string) => !ONLY || ONLY.has(shape);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/taskwarden_bench';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = new URL('..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

// ---------- child processes ----------

interface Child {
  url: string;
  process: ChildProcess;
  ask<T>(cmd: 'mem' | 'count'): Promise<T>;
  stop(): Promise<void>;
}

async function startChild(kind: 'taskwarden' | 'yoga' | 'ws', options: { env?: Record<string, string>; execArgv?: string[] } = {}): Promise<Child> {
  const child = fork(join(ROOT, 'bench/servers.ts'), [kind], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', '--expose-gc', ...(options.execArgv ?? [])],
    env: { ...process.env, LOG_LEVEL: 'silent', ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url: string }) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before it was ready`)));
  });
  return {
    url,
    process: child,
    ask: <T>(cmd: 'mem' | 'count') =>
      new Promise<T>((resolve) => {
        child.once('message', (m: Record<string, T>) => resolve(m[cmd === 'mem' ? 'mem' : 'count']!));
        child.send({ cmd });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ cmd: 'stop' });
      }),
  };
}

async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) throw Object.assign(new Error(body.errors[0]!.message), { code: body.errors[0]!.extensions?.code });
  return body.data!;
}

async function startTasks(url: string, n: number, kind: string): Promise<{ id: string; leaseToken: string }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const { createTask } = await gql(url, 'mutation($n: String!, $k: String!) { createTask(input: { name: $n, kind: $k }) { id } }', {
      n: `${kind} ${i}`,
      k: kind,
    });
    const { startTask } = await gql(url, 'mutation($id: ID!) { startTask(id: $id, workerId: "bench") { leaseToken } }', { id: createTask.id });
    out.push({ id: createTask.id as string, leaseToken: startTask.leaseToken as string });
  }
  return out;
}

const REPORT = 'mutation($id: ID!, $l: String!, $p: Float) { reportProgress(id: $id, leaseToken: $l, progress: $p) { id } }';

// ---------- shapes ----------

/** autocannon at `connections` connections; `body(context)` makes each request's body (context is per connection). */
async function hammer(url: string, body: (context: Record<string, any>) => string) {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (request: any, context: Record<string, any>) => ({ ...request, body: body(context) }) }],
  } as autocannon.Options);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

/** Single reportProgress over HTTP, one task per connection, against a bare yoga trivial mutation. */
async function httpShape(taskwarden: Child, yoga: Child) {
  const tasks = await startTasks(taskwarden.url, CONNECTIONS, 'bench-http');
  let next = 0;
  const tw = await hammer(taskwarden.url, (context) => {
    context.task ??= tasks[next++ % tasks.length];
    context.i = (context.i ?? 0) + 1;
    return JSON.stringify({ query: REPORT, variables: { id: context.task.id, l: context.task.leaseToken, p: (context.i % 10_000) / 100 } });
  });
  // A sample of what the server answered: a refused report would still be HTTP 200.
  const check = await gql(taskwarden.url, REPORT, { id: tasks[0]!.id, l: tasks[0]!.leaseToken, p: 1 });
  if (!check.reportProgress?.id) throw new Error('reportProgress did not answer as expected');
  const bare = await hammer(yoga.url, () => '{"query":"mutation { bump(by: 1) }"}');
  return { tw, bare };
}

/** 50 tasks each reporting in a loop (await each answer), with a live subscriber timing report -> delivery. */
async function loopShape(taskwarden: Child) {
  const tasks = await startTasks(taskwarden.url, CONNECTIONS, 'bench-loop');
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  // The feed's own share: from the caller's answer to the delivery (0 when the subscriber had it first).
  const answeredAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  const subscriber = createClient({ url: taskwarden.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  const live = new Promise<void>((resolve) => {
    subscriber.subscribe(
      { query: 'subscription { taskUpdated(kinds: ["bench-loop"]) { taskId progress } }' },
      {
        next: (m) => {
          resolve();
          const { taskId, progress } = (m.data as { taskUpdated: { taskId: string; progress: number } }).taskUpdated;
          const key = `${taskId}:${progress}`;
          const sent = sentAt.get(key);
          if (sent !== undefined) {
            latencies.push(performance.now() - sent);
            deliveredAt.set(key, performance.now());
            sentAt.delete(key);
          }
        },
        error: (error) => console.error('subscriber error', error),
        complete: () => {},
      },
    );
  });
  // Until the subscription is live, nudge one task.
  for (let i = 0; !(await Promise.race([live.then(() => true), sleep(50).then(() => false)])); i++) {
    await gql(taskwarden.url, REPORT, { id: tasks[0]!.id, l: tasks[0]!.leaseToken, p: 50 + (i % 40) });
  }
  let accepted = 0;
  let refused = 0;
  const end = performance.now() + DURATION * 1000;
  const started = performance.now();
  await Promise.all(
    tasks.map(async (task) => {
      for (let i = 1; performance.now() < end; i++) {
        const p = (i % 10_000) / 100;
        const key = `${task.id}:${p}`;
        sentAt.set(key, performance.now());
        try {
          await gql(taskwarden.url, REPORT, { id: task.id, l: task.leaseToken, p });
          answeredAt.set(key, performance.now());
          accepted++;
        } catch {
          refused++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await sleep(500);
  await subscriber.dispose();
  const afterAnswer = [...deliveredAt].filter(([key]) => answeredAt.has(key)).map(([key, at]) => Math.max(0, at - answeredAt.get(key)!));
  return {
    rate: accepted / elapsed,
    refused,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    delivered: latencies.length,
    accepted,
    afterAnswerP50: quantile(afterAnswer, 0.5),
    afterAnswerP99: quantile(afterAnswer, 0.99),
  };
}

/** The same with BullMQ: 50 jobs, each `await job.updateProgress()` in a loop; QueueEvents times the delivery. */
async function bullmqShape() {
  const connection = { url: REDIS_URL } as never;
  const prefix = `twbench${process.pid}`;
  const queue = new Queue('bench', { connection, prefix });
  const events = new QueueEvents('bench', { connection, prefix });
  await events.waitUntilReady();
  const jobs: Job[] = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => queue.add('job', { i })));
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  events.on('progress', ({ jobId, data }) => {
    const key = `${jobId}:${data}`;
    const sent = sentAt.get(key);
    if (sent !== undefined) {
      latencies.push(performance.now() - sent);
      sentAt.delete(key);
    }
  });
  await sleep(300);
  let updates = 0;
  const end = performance.now() + DURATION * 1000;
  const started = performance.now();
  await Promise.all(
    jobs.map(async (job) => {
      for (let i = 1; performance.now() < end; i++) {
        const p = (i % 10_000) / 100;
        sentAt.set(`${job.id}:${p}`, performance.now());
        await job.updateProgress(p);
        updates++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await sleep(500);
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { rate: updates / elapsed, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), delivered: latencies.length };
}

/** Batched ingest through the worker SDK: BATCH_TASKS tasks in one process, each reporting in a tight loop. */
async function batchShape(taskwarden: Child) {
  const url = taskwarden.url;
  for (let i = 0; i < BATCH_TASKS; i += 100) {
    await gql(
      url,
      `mutation { ${Array.from({ length: Math.min(100, BATCH_TASKS - i) }, (_, j) => `t${j}: createTask(input: { name: "batch ${i + j}", kind: "bench-batch" }) { id }`).join(' ')} }`,
    ).catch(async () => {
      for (let j = i; j < Math.min(i + 100, BATCH_TASKS); j++)
        await gql(url, `mutation { createTask(input: { name: "batch ${j}", kind: "bench-batch" }) { id } }`);
    });
  }
  let end = Infinity;
  let running = 0;
  const worker = createWorker({
    url,
    kinds: ['bench-batch'],
    concurrency: BATCH_TASKS,
    progressInterval: 0,
    pollInterval: 50,
    subscribe: false,
    handleSignals: false,
    logger: pino({ level: 'silent' }),
    handler: async (_task, ctx) => {
      running++;
      while (end === Infinity) await sleep(20);
      for (let i = 1; performance.now() < end && !ctx.signal.aborted; i++) {
        ctx.progress((i % 10_000) / 100);
        await new Promise((resolve) => setImmediate(resolve));
      }
      return null;
    },
  });
  while (running < BATCH_TASKS) await sleep(50);
  const before = await taskwarden.ask<number>('count');
  const started = performance.now();
  end = started + DURATION * 1000;
  await sleep(DURATION * 1000);
  const after = await taskwarden.ask<number>('count');
  const elapsed = (performance.now() - started) / 1000;
  await worker.stop();
  return { rate: (after - before) / elapsed, tasks: BATCH_TASKS };
}

async function connectAll(n: number, open: () => Promise<unknown>) {
  const out = [];
  for (let i = 0; i < n; i += 200) out.push(...(await Promise.all(Array.from({ length: Math.min(200, n - i) }, open))));
  return out;
}

/** One task's changes to n graphql-ws subscribers, paced; latency from sending the report to each delivery. */
async function fanOutShape(taskwarden: Child, n: number, memory?: { before: MemoryFigures }) {
  const [task] = await startTasks(taskwarden.url, 1, `bench-fanout-${n}`);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let delivered = 0;
  let errors = 0;
  const wsUrl = taskwarden.url.replace('http', 'ws');
  const warmed = new Set<number>();
  const clients = (await connectAll(n, async () => {
    const index = warmed.size + Math.random();
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    client.subscribe(
      { query: 'subscription($id: ID!) { taskUpdated(id: $id) { progress } }', variables: { id: task!.id } },
      {
        next: (m) => {
          const progress = (m.data as { taskUpdated: { progress: number } }).taskUpdated.progress;
          warmed.add(index);
          const sent = sentAt.get(progress);
          if (sent !== undefined) {
            delivered++;
            latencies.push(performance.now() - sent);
          }
        },
        error: () => errors++,
        complete: () => {},
      },
    );
    await new Promise<void>((resolve) => {
      client.on('connected', () => resolve());
      client.on('closed', () => resolve());
    });
    return client;
  })) as Client[];
  // Warm-up reports until every subscriber is live (a subscription is live once its first event arrives).
  for (let i = 0; warmed.size < n && i < 600; i++) {
    await gql(taskwarden.url, REPORT, { id: task!.id, l: task!.leaseToken, p: 0.01 + (i % 90) / 100 });
    await sleep(100);
  }
  await sleep(500);
  let mem: MemoryFigures | undefined;
  if (memory) mem = await taskwarden.ask<MemoryFigures>('mem');
  for (let i = 0; i < CHANGES; i++) {
    const progress = 1 + i;
    sentAt.set(progress, performance.now());
    await gql(taskwarden.url, REPORT, { id: task!.id, l: task!.leaseToken, p: progress });
    await sleep(150);
  }
  const deadline = Date.now() + 10_000;
  while (delivered < n * CHANGES && Date.now() < deadline) await sleep(20);
  await Promise.all(clients.map((c) => c.dispose()));
  await sleep(300);
  return {
    n,
    live: warmed.size,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    delivered,
    expected: n * CHANGES,
    errors,
    perSubscriber: mem && memory ? perSubscriber(memory.before, mem, n) : undefined,
  };
}

async function rawWsShape(peer: Child, n: number) {
  const latencies: number[] = [];
  let delivered = 0;
  let sent = 0;
  const sockets = (await connectAll(
    n,
    () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(peer.url);
        socket.on('open', () => resolve(socket));
        socket.on('error', reject);
        socket.on('message', (data) => {
          JSON.parse(String(data));
          delivered++;
          latencies.push(performance.now() - sent);
        });
      }),
  )) as WebSocket[];
  const control = new WebSocket(peer.url);
  await new Promise((resolve) => control.on('open', resolve));
  for (let i = 0; i < CHANGES; i++) {
    sent = performance.now();
    control.send(`go:${i}`);
    await sleep(150);
  }
  const deadline = Date.now() + 10_000;
  while (delivered < n * CHANGES && Date.now() < deadline) await sleep(20);
  for (const socket of [...sockets, control]) socket.terminate();
  await sleep(300);
  return { n, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), delivered, expected: n * CHANGES };
}

type MemoryFigures = { rss: number; heapUsed: number; external: number; arrayBuffers: number };
const perSubscriber = (before: MemoryFigures, after: MemoryFigures, n: number) => ({
  rssKB: (after.rss - before.rss) / n / 1024,
  heapKB: (after.heapUsed + after.external - before.heapUsed - before.external) / n / 1024,
});

/** The 50-connection loop against a server started with --cpu-prof: where its time goes. */
async function profileShape(env: Record<string, string>) {
  const dir = mkdtempSync(join(os.tmpdir(), 'twbench-prof-'));
  const server = await startChild('taskwarden', { env, execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  const shape = args['profile-shape'];
  const result = await (
    shape === 'batch'
      ? batchShape(server)
      : shape === 'fanout'
        ? fanOutShape(server, Math.max(...FANOUT)).then((f) => ({ rate: f.delivered / CHANGES, p99: f.p99 }))
        : loopShape(server)
  ).finally(() => server.stop());
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const top = file ? selfTimeByModule(join(dir, file)) : [];
  // Kept for a closer look (BENCH_KEEP_PROFILE=path): the summary by module hides which functions.
  if (file && process.env.BENCH_KEEP_PROFILE) writeFileSync(process.env.BENCH_KEEP_PROFILE, readFileSync(join(dir, file)));
  rmSync(dir, { recursive: true, force: true });
  return { top, rate: result.rate };
}

/** The monitor's sweep over 200 running tasks beside many finished ones: its cost must follow the running ones. */
async function sweepShape(running = 200, finishedCounts = [1_000, 100_000]) {
  const db = await openDatabase({ url: DATABASE_URL });
  const rows = [];
  try {
    for (const finished of finishedCounts) {
      await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskDependency", "TaskCount", "TaskEvent", "MonitorSweep"');
      await db.prisma.$executeRawUnsafe(`
        INSERT INTO "Task" (name, status, "createdAt", "startedAt", "completedAt", progress)
        SELECT 'done ' || g, (ARRAY['COMPLETED','FAILED','CANCELLED'])[1 + g % 3]::"TaskStatus", now(), now(), now(), 100
        FROM generate_series(1, ${finished}) g`);
      await db.prisma.$executeRawUnsafe(`
        INSERT INTO "Task" (name, status, "createdAt", "startedAt", "lastHeartbeatAt", "lastProgressAt", "leaseToken", attempt)
        SELECT 'running ' || g, 'RUNNING', now(), now(), now(), now(), md5(g::text), 1 FROM generate_series(1, ${running}) g`);
      await db.prisma.$executeRawUnsafe('ANALYZE "Task"');
      const services = createServices({
        prisma: db.prisma,
        clock: manualClock(new Date(Date.now() + 60_000)), // nothing is stuck yet: this measures the scan itself
        bus: createEventBus(),
        monitor: { enabled: false, intervalMs: 60_000, heartbeatTimeoutMs: 3_600_000, stallTimeoutMs: 3_600_000, action: 'cancel' },
        log: pino({ level: 'silent' }),
      });
      const samples: number[] = [];
      for (let i = 0; i < 7; i++) {
        const start = performance.now();
        await sweep(services, { rules: oneTimeout(3_600_000), action: 'cancel', actor: 'monitor', trigger: 'schedule' });
        samples.push(performance.now() - start);
      }
      rows.push({ running, finished, median: quantile(samples, 0.5) });
    }
    await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskDependency", "TaskCount", "TaskEvent", "MonitorSweep"');
  } finally {
    await db.close();
  }
  return rows;
}

// ---------- setup and report ----------

async function ensureDatabase(url: string) {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error;
    const admin = new URL(url);
    const name = admin.pathname.slice(1);
    admin.pathname = '/postgres';
    const creator = new pg.Client({ connectionString: admin.toString() });
    await creator.connect();
    await creator.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
    await creator.end();
    return ensureDatabase(url);
  }
  const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
  // Start from empty tables each run (the bench's own database).
  await client.query(
    `DO $$ BEGIN IF to_regclass('"Task"') IS NOT NULL THEN TRUNCATE "Task", "TaskEvent" CASCADE; END IF; IF to_regclass('"TaskCount"') IS NOT NULL THEN TRUNCATE "TaskCount"; END IF; END $$`,
  );
  await client.end();
  return rows[0]!.server_version;
}

function versionOf(pkg: string): string {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
const ratio = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? fmt(x, 0) : x >= 1 ? fmt(x, 2) : fmt(x, 3)}x` : 'n/a');
const verdict = (ok: boolean) => (ok ? 'met' : 'missed');

async function main() {
  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0]!;
  const pgVersion = await ensureDatabase(DATABASE_URL);
  const redis = new Redis(REDIS_URL);
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  redis.disconnect();
  const env: Record<string, string> = { DATABASE_URL, LOG_LEVEL: 'silent', ...(process.env.BENCH_SERVER_ENV ? JSON.parse(process.env.BENCH_SERVER_ENV) : {}) };

  log(`Taskwarden (${DATABASE_URL.replace(/\/\/[^@]*@/, '//')}), bare yoga and raw ws servers starting`);
  const [taskwarden, yoga, rawWs] = await Promise.all([startChild('taskwarden', { env }), startChild('yoga'), startChild('ws')]);
  try {
    if (ONLY) {
      const show = (name: string, value: unknown) =>
        console.log(
          name,
          JSON.stringify(value, (_k, v) => (typeof v === 'number' ? round(v, 1) : v)),
        );
      if (runs('http')) show('http', await httpShape(taskwarden, yoga));
      if (runs('loop')) show('loop', await loopShape(taskwarden));
      if (runs('bullmq')) show('bullmq', await bullmqShape());
      if (runs('batch')) show('batch', await batchShape(taskwarden));
      if (runs('fanout'))
        for (const n of FANOUT)
          show(`fanout ${n}`, [await fanOutShape(taskwarden, n, { before: await taskwarden.ask<MemoryFigures>('mem') }), await rawWsShape(rawWs, n)]);
      if (runs('profile')) show('profile', await profileShape(env));
      if (runs('sweep')) show('sweep', await sweepShape());
      return;
    }
    log(`HTTP: single reportProgress vs bare yoga, ${CONNECTIONS} connections, ${DURATION}s each`);
    const http = await httpShape(taskwarden, yoga);
    log(`loop: ${CONNECTIONS} tasks reporting in a loop, with a live subscriber, ${DURATION}s`);
    const loop = await loopShape(taskwarden);
    log(`BullMQ: ${CONNECTIONS} jobs updateProgress in a loop, QueueEvents, ${DURATION}s`);
    const bull = await bullmqShape();
    log(`batched ingest: ${BATCH_TASKS} tasks through the worker SDK, ${DURATION}s`);
    const batch = await batchShape(taskwarden);
    const fanouts = [];
    const raws: Awaited<ReturnType<typeof rawWsShape>>[] = [];
    for (const n of FANOUT) {
      log(`fan-out to ${n} graphql-ws subscribers, then raw ws`);
      const before = n === Math.max(...FANOUT) ? await taskwarden.ask<MemoryFigures>('mem') : undefined;
      fanouts.push(await fanOutShape(taskwarden, n, before ? { before } : undefined));
      raws.push(await rawWsShape(rawWs, n));
    }
    await Promise.all([taskwarden.stop(), yoga.stop(), rawWs.stop()]);
    log('profile: the loop shape again against a server under node --cpu-prof');
    const profile = await profileShape(env);
    log('sweep: 200 running tasks beside 1,000 and 100,000 finished ones');
    const sweeps = await sweepShape();

    const memory = fanouts.find((f) => f.perSubscriber)!;
    const rows: [string, string, string, string, string, string][] = [
      [
        `\`reportProgress\` over HTTP, ${CONNECTIONS} connections`,
        `${fmt(http.tw.rps)} req/s, p99 ${fmt(http.tw.p99)} ms`,
        `bare graphql-yoga trivial mutation: ${fmt(http.bare.rps)} req/s, p99 ${fmt(http.bare.p99)} ms`,
        ratio(http.tw.rps / http.bare.rps),
        '≥ 0.7x',
        verdict(http.tw.rps / http.bare.rps >= 0.7),
      ],
      [
        `${CONNECTIONS} tasks each reporting in a loop (HTTP, one at a time)`,
        `${fmt(loop.rate)} reports/s`,
        `BullMQ \`job.updateProgress\`, ${CONNECTIONS} jobs: ${fmt(bull.rate)} updates/s`,
        ratio(loop.rate / bull.rate),
        '',
        '',
      ],
      [
        `batched ingest through the worker SDK, ${fmt(batch.tasks)} tasks in one process`,
        `${fmt(batch.rate)} accepted reports/s`,
        `BullMQ \`job.updateProgress\`, ${CONNECTIONS} jobs: ${fmt(bull.rate)} updates/s`,
        ratio(batch.rate / bull.rate),
        '≥ 1.0x',
        verdict(batch.rate / bull.rate >= 1),
      ],
      [
        'report → `taskUpdated` subscriber, under the loop',
        `p50 ${fmt(loop.p50, 1)} ms, p99 ${fmt(loop.p99, 1)} ms (${fmt(loop.delivered)} timed; from the caller's answer: p50 ${fmt(loop.afterAnswerP50, 1)} ms, p99 ${fmt(loop.afterAnswerP99, 1)} ms)`,
        `BullMQ QueueEvents: p50 ${fmt(bull.p50, 1)} ms, p99 ${fmt(bull.p99, 1)} ms`,
        ratio(loop.p99 / bull.p99),
        '≤ 2x',
        verdict(loop.p99 / bull.p99 <= 2),
      ],
      ...fanouts.map((f, i): [string, string, string, string, string, string] => [
        `one task's changes to ${fmt(f.n)} graphql-ws subscribers (${CHANGES} changes, report → delivery)`,
        `p50 ${fmt(f.p50, 1)} ms, p99 ${fmt(f.p99, 1)} ms; ${fmt(f.delivered)}/${fmt(f.expected)} delivered`,
        `raw \`ws\` broadcast to ${fmt(raws[i]!.n)}: p50 ${fmt(raws[i]!.p50, 1)} ms, p99 ${fmt(raws[i]!.p99, 1)} ms`,
        ratio(f.p99 / raws[i]!.p99),
        '≤ 3x, all delivered',
        verdict(f.p99 / raws[i]!.p99 <= 3 && f.delivered === f.expected),
      ]),
      [
        `server memory per idle graphql-ws subscriber (${fmt(memory.n)} connected)`,
        `${fmt(memory.perSubscriber!.heapKB, 1)} KB heap + external (RSS grew ${fmt(memory.perSubscriber!.rssKB, 1)} KB a subscriber)`,
        '',
        '',
        '≤ 30 KB',
        verdict(memory.perSubscriber!.heapKB <= 30),
      ],
    ];
    const table = [
      '| work | Taskwarden | beside it, same run | ratio | goal | |',
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    const profileTable = [
      `Self time by module, Taskwarden server under the ${CONNECTIONS}-task loop (${fmt(profile.rate)} reports/s while profiled):`,
      '',
      '| module | self time |',
      '|---|---|',
      ...profile.top.map((p) => `| ${p.module} | ${fmt(p.share * 100, 1)}% |`),
    ].join('\n');
    const cpus = os.cpus();
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const section = [
      '## Hot path: Taskwarden beside BullMQ, bare yoga and raw ws',
      '',
      `Latest run: ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, \`${command}\` (about ${Math.round((Date.now() - startedAt.getTime()) / 60_000)} min).`,
      '',
      `Machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? '?'}, ${fmt(os.totalmem() / 2 ** 30, 1)} GB, ${os.type()} ${os.release()}; load average ${fmt(loadAtStart, 1)} at the start (other work on the machine skews every figure; read the same-run ratios); Node ${process.version}; PostgreSQL ${pgVersion} on 127.0.0.1; Redis ${redisVersion}.`,
      `Versions: graphql-yoga ${versionOf('graphql-yoga')}, graphql-ws ${versionOf('graphql-ws')}, ws ${versionOf('ws')}, Prisma ${versionOf('@prisma/client')}, BullMQ ${versionOf('bullmq')}, autocannon ${versionOf('autocannon')}.`,
      'Each server runs in its own process; the load generator, the BullMQ clients and the subscribers run in one more, on the same machine. Taskwarden runs with its monitor off and no token (the loopback default).',
      '',
      table,
      '',
      profileTable,
      '',
      "The monitor's sweep (in-process, same database): " +
        sweeps.map((s) => `${fmt(s.running)} running + ${fmt(s.finished)} finished, median ${fmt(s.median, 1)} ms`).join('; ') +
        '. Its cost follows the running tasks, not the table.',
      '',
    ].join('\n');
    console.log(`\n${section}`);
    if (!args['no-write']) writeSection(join(ROOT, args.output!), section);
  } finally {
    await Promise.all([taskwarden.stop(), yoga.stop(), rawWs.stop()]);
  }
}

const START = '<!-- bench:hot-path:start (written by `npm run bench`) -->';
const END = '<!-- bench:hot-path:end -->';

/** Replaces this bench's section of the file, leaving every other section as it is. */
function writeSection(file: string, section: string) {
  const block = `${START}\n${section}${END}\n`;
  if (!existsSync(file)) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, `# Benchmarks\n\nFigures measured on one machine, by the commands named in each section.\n\n${block}`);
    return;
  }
  const text = readFileSync(file, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  writeFileSync(file, from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + END.length + 1) : `${text.trimEnd()}\n\n${block}`);
}

await main();
process.exit(0);
