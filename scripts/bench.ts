// `npm run bench`: measures Taskwarden's hot paths and prints figures.
//   progress reports   (the worker hot path: one conditional UPDATE + history row)
//   subscription fan-out (one change delivered to many graphql-ws subscribers)
//   monitor sweep      (cost must follow running tasks, not all tasks)
// Runs on embedded PGlite, and also on PostgreSQL when BENCH_DATABASE_URL is set.
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import pino from 'pino';
import WebSocket from 'ws';
import { manualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/open.js';
import { createEventBus } from '../src/events.js';
import { sweep } from '../src/monitor/sweep.js';
import { startTaskwarden } from '../src/server/taskwarden.js';
import { createServices } from '../src/services.js';
import { oneTimeout } from '../src/tasks/stuck.js';

const { values: args } = parseArgs({
  options: {
    reports: { type: 'string', default: '2000' },
    subscribers: { type: 'string', default: '200' },
    changes: { type: 'string', default: '100' },
    running: { type: 'string', default: '200' },
    finished: { type: 'string', default: '1000,100000' },
  },
});

const log = pino({ level: 'silent' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = async (fn: () => Promise<unknown>) => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

async function progressReports(db: Database, n: number) {
  await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskEvent", "MonitorSweep"');
  const { tasks } = servicesOver(db, manualClock(new Date()));
  const workers = 8;
  const leases = await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      const task = await tasks.create({ name: `bench ${i}` });
      return tasks.start(task.id, `w${i}`);
    }),
  );
  const rows = [];
  for (const [label, concurrency] of [
    ['sequential', 1],
    [`${workers} workers`, workers],
  ] as const) {
    let sent = 0;
    const elapsed = await time(() =>
      Promise.all(
        leases.slice(0, concurrency).map(async ({ task, leaseToken }) => {
          for (let i = 0; sent < n; i++) {
            sent++;
            await tasks.reportProgress(task.id, leaseToken, { progress: (i % 100) + 0.5, message: 'simulating' });
          }
        }),
      ),
    );
    const heartbeat = await time(async () => {
      for (let i = 0; i < n / 4; i++) await tasks.reportProgress(leases[0]!.task.id, leases[0]!.leaseToken);
    });
    rows.push({
      scenario: `progress, ${label}`,
      'reports/s': Math.round((n / elapsed) * 1000),
      'ms/report': +(elapsed / n).toFixed(3),
      'heartbeat ms': concurrency === 1 ? +(heartbeat / (n / 4)).toFixed(3) : '',
    });
  }
  return rows;
}

async function fanOut(db: Database, subscribers: number, changes: number) {
  await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskEvent", "MonitorSweep"');
  const config = loadConfig({ PORT: '0', MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent', MAX_CONNECTIONS_PER_TOKEN: String(subscribers + 10) });
  const server = await startTaskwarden({ config, log, db });
  const task = await server.services.tasks.create({ name: 'fan-out' });
  const { leaseToken } = await server.services.tasks.start(task.id, 'w');
  let delivered = 0;
  const latencies: number[] = [];
  const sentAt = new Map<number, number>();
  const clients = Array.from({ length: subscribers }, () =>
    createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 }),
  );
  for (const client of clients) {
    client.subscribe(
      { query: `subscription($id: ID!) { taskUpdated(id: $id) { progress } }`, variables: { id: task.id } },
      {
        next: (m) => {
          delivered++;
          const sent = sentAt.get((m.data as { taskUpdated: { progress: number } }).taskUpdated.progress);
          if (sent) latencies.push(performance.now() - sent);
        },
        error: () => {},
        complete: () => {},
      },
    );
  }
  while (server.services.bus.openSubscriptions < subscribers) await new Promise((r) => setTimeout(r, 20));
  let step = 0;
  const report = async () => {
    step++;
    const progress = (step % 100) + 0.25;
    sentAt.set(progress, performance.now());
    await server.services.tasks.reportProgress(task.id, leaseToken, { progress, message: `step ${step}` });
  };
  const drained = async (expected: number) => {
    while (delivered < expected) await new Promise((r) => setTimeout(r, 2));
  };
  // Saturated: changes back to back; how many deliveries per second the server sustains.
  const elapsed = await time(async () => {
    for (let i = 0; i < changes; i++) await report();
    await drained(subscribers * changes);
  });
  // Paced at 10 changes a second, like busy workers: how long one change takes to reach every subscriber.
  latencies.length = 0;
  for (let i = 0; i < 30; i++) {
    await report();
    await new Promise((r) => setTimeout(r, 100));
  }
  await drained(subscribers * (changes + 30));
  await Promise.all(clients.map((c) => c.dispose()));
  await server.stop();
  return [
    {
      scenario: `fan-out, ${subscribers} ws subscribers x ${changes} changes`,
      'deliveries/s (saturated)': Math.round(((subscribers * changes) / elapsed) * 1000),
      'p50 latency ms (10 changes/s)': +median(latencies).toFixed(1),
      'p99 latency ms (10 changes/s)': +[...latencies].sort((a, b) => a - b)[Math.floor(latencies.length * 0.99)]!.toFixed(1),
    },
  ];
}

async function sweeps(db: Database, running: number, finishedCounts: number[]) {
  const rows = [];
  for (const finished of finishedCounts) {
    await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskEvent", "MonitorSweep"');
    // Bulk rows straight in SQL: the history is irrelevant to a sweep.
    await db.prisma.$executeRawUnsafe(`
      INSERT INTO "Task" (name, status, "createdAt", "startedAt", "completedAt", progress)
      SELECT 'done ' || g, (ARRAY['COMPLETED','FAILED','CANCELLED'])[1 + g % 3]::"TaskStatus", now(), now(), now(), 100
      FROM generate_series(1, ${finished}) g`);
    await db.prisma.$executeRawUnsafe(`
      INSERT INTO "Task" (name, status, "createdAt", "startedAt", "lastHeartbeatAt", "lastProgressAt", "leaseToken", attempt)
      SELECT 'running ' || g, 'RUNNING', now(), now(), now(), now(), md5(g::text), 1 FROM generate_series(1, ${running}) g`);
    await db.prisma.$executeRawUnsafe('ANALYZE "Task"');
    const clock = manualClock(new Date(Date.now() + 60_000)); // nothing is stuck yet: measures the scan itself
    const services = servicesOver(db, clock);
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) {
      samples.push(await time(() => sweep({ ...services, prisma: db.prisma }, { rules: oneTimeout(3600_000), action: 'cancel', actor: 'monitor', trigger: 'schedule' })));
    }
    const plan = (await db.prisma.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(
      `EXPLAIN SELECT * FROM "Task" WHERE status = 'RUNNING' ORDER BY "startedAt"`,
    )).map((r) => r['QUERY PLAN']).join(' | ');
    rows.push({
      scenario: `sweep, ${running} running + ${finished.toLocaleString('en')} finished`,
      'median ms': +median(samples).toFixed(1),
      plan: plan.includes('Index') ? 'index on status' : plan.slice(0, 60),
    });
  }
  return rows;
}

function servicesOver(db: Database, clock: ReturnType<typeof manualClock>) {
  return createServices({
    prisma: db.prisma,
    clock,
    bus: createEventBus(),
    monitor: { enabled: false, intervalMs: 60_000, heartbeatTimeoutMs: 3_600_000, stallTimeoutMs: 3_600_000, action: 'cancel' },
    log,
  });
}

async function main() {
  const targets: [string, Parameters<typeof openDatabase>[0]][] = [['pglite', { memory: true }]];
  if (process.env.BENCH_DATABASE_URL) targets.push(['postgres', { url: process.env.BENCH_DATABASE_URL }]);
  console.log(`node ${process.version}, ${(await import('node:os')).cpus().length} cores; ${new Date().toISOString()}`);
  for (const [name, target] of targets) {
    const db = await openDatabase(target);
    console.log(`\n== ${name} ==`);
    console.table(await progressReports(db, Number(args.reports)));
    console.table(await fanOut(db, Number(args.subscribers), Number(args.changes)));
    console.table(await sweeps(db, Number(args.running), args.finished!.split(',').map(Number)));
    await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskEvent", "MonitorSweep"');
    await db.close();
  }
}

await main();
