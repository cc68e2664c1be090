// `npm run bench:scale`: stats, lists, search and the sweep at 100k and 1M tasks (issue 13).
//
// Seeds each database with set-based SQL (INSERT ... SELECT FROM generate_series, never row by
// row) in the shape of a year of backtests: 10,000 running (100 of them silent for 3 hours), 5,000
// pending, the rest finished over 23 days, three history entries per task. Then it calls the
// services the API's resolvers call, with the monitor off, and prints each figure (median of 7 after
// 2 warm-ups) with the EXPLAIN (ANALYZE, BUFFERS) of its main statement (the slowest statement the
// call ran). The results are appended to BENCHMARKS.md under "## Data at scale".
//
//   npm run bench:scale                                   # PGlite (in memory) at 100k
//   BENCH_DATABASE_URL=postgres://root@127.0.0.1/twbench npm run bench:scale -- --sizes 100000,1000000
//
// BENCH_DATABASE_URL is emptied and refilled: give it a database of its own, never one with data
// you keep, nor the one tests use.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import pino from 'pino';
import { systemClock } from '../src/clock.js';
import { pgliteAdapter } from '../src/db/pglite-adapter.js';
import { migrate } from '../src/db/migrate.js';
import { pgliteSession, pgSession } from '../src/db/open.js';
import { pgliteExtensions } from '../src/db/pglite-extensions.js';
import { createEventBus } from '../src/events.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createServices } from '../src/services.js';
import { TaskStatus } from '../src/tasks/model.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string' },
    pglite: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '7' },
    output: { type: 'string', default: 'BENCHMARKS.md' },
    explain: { type: 'boolean', default: true },
  },
});
const runs = Number(args.runs);
const RUNNING = 10_000;
const SILENT = 100;
const PENDING = 5_000;
const EVENTS_PER_TASK = 3;

interface Target {
  provider: 'postgres' | 'pglite';
  size: number;
  prisma: PrismaClient;
  /** Runs SQL text with positional parameters, outside Prisma (for EXPLAIN). */
  raw(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

interface Statement {
  query: string;
  params: string;
  durationMs: number;
}

let captured: Statement[] = [];
const logQueries = { log: [{ emit: 'event' as const, level: 'query' as const }] };

async function openPostgres(url: string, size: number): Promise<Target> {
  const pool = new pg.Pool({ connectionString: url, max: 10, options: '-c TimeZone=UTC' });
  const client = await pool.connect();
  try {
    await migrate(pgSession(client));
  } finally {
    client.release();
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool), ...logQueries });
  prisma.$on('query', (e) => captured.push({ query: e.query, params: e.params, durationMs: e.duration }));
  return {
    provider: 'postgres',
    size,
    prisma,
    raw: async (sql, params) => (await pool.query(sql, params as unknown[])).rows,
    exec: async (sql) => void (await pool.query(sql)),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPGlite(size: number): Promise<Target> {
  const pglite = await PGlite.create('memory://', { extensions: pgliteExtensions });
  await pglite.exec(`SET TimeZone = 'UTC'`);
  await migrate(pgliteSession(pglite));
  const prisma = new PrismaClient({ adapter: pgliteAdapter(pglite), ...logQueries });
  prisma.$on('query', (e) => captured.push({ query: e.query, params: e.params, durationMs: e.duration }));
  return {
    provider: 'pglite',
    size,
    prisma,
    raw: async (sql, params) => (await pglite.query<Record<string, unknown>>(sql, params as unknown[])).rows,
    exec: async (sql) => void (await pglite.exec(sql)),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}

/** Fills the database in a few set-based statements. The counters are backfilled the way the migration does. */
async function seed(target: Target) {
  const finished = target.size - RUNNING - PENDING;
  const started = Date.now();
  await target.exec(`TRUNCATE "Task", "TaskCount", "TaskEvent", "MonitorSweep", "Alert", "AlertDelivery" RESTART IDENTITY`);
  await target.exec(`ALTER TABLE "Task" DISABLE TRIGGER USER`);
  // i = 1..finished: finished over 23 days, 80% completed, 12% failed, 8% cancelled; then running, then pending.
  await target.exec(`
    INSERT INTO "Task" (name, kind, status, progress, attempt, "workerId", "leaseToken", params, result, error,
                        "createdAt", "startedAt", "lastHeartbeatAt", "lastProgressAt", "completedAt")
    SELECT 'bt ' || i || ' ' || (ARRAY['SMA cross','Momentum 12-1','Pairs','RSI mean-reversion','Bollinger breakout'])[1 + i % 5]
             || ' ' || (ARRAY['AAPL','NVDA','SPY','BTC-USD','0700.HK','EURUSD'])[1 + i % 6] || ' 2015-2024',
           (ARRAY['backtest','backtest','backtest','optimize','report'])[1 + i % 5],
           s.status::"TaskStatus",
           CASE WHEN s.status = 'COMPLETED' THEN 100 WHEN s.status = 'RUNNING' THEN 40 ELSE 0 END,
           CASE WHEN s.status = 'PENDING' THEN 0 ELSE 1 END,
           CASE WHEN s.status <> 'PENDING' THEN 'worker-' || (i % 50) END,
           CASE WHEN s.status = 'RUNNING' THEN md5(i::text) END,
           jsonb_build_object('strategy', 'sma-cross', 'symbol', 'AAPL', 'window', i % 200, 'notes', repeat('x', 200)),
           CASE WHEN s.status = 'COMPLETED' THEN jsonb_build_object('sharpe', (i % 300) / 100.0, 'trades', i % 1000) END,
           CASE WHEN s.status = 'FAILED' THEN 'division by zero in position sizing' END,
           s.created, s.started, s.heartbeat, s.heartbeat, s.completed
    FROM generate_series(1, ${target.size}) i
    CROSS JOIN LATERAL (
      SELECT st AS status,
             CASE WHEN i <= ${finished} THEN now() - interval '23 days' + (i::float8 / ${finished}) * interval '23 days' - interval '1 hour'
                  ELSE now() - interval '4 hours' + ((i - ${finished})::float8 / ${RUNNING + PENDING}) * interval '3 hours' END AS created
      FROM (SELECT CASE WHEN i <= ${finished} THEN (CASE WHEN i % 25 < 20 THEN 'COMPLETED' WHEN i % 25 < 23 THEN 'FAILED' ELSE 'CANCELLED' END)
                        WHEN i <= ${finished + RUNNING} THEN 'RUNNING' ELSE 'PENDING' END AS st) x
    ) c
    CROSS JOIN LATERAL (
      SELECT c.status, c.created,
             CASE WHEN c.status <> 'PENDING' THEN c.created + interval '1 minute' END AS started,
             CASE WHEN c.status = 'RUNNING' AND i > ${finished + RUNNING - SILENT} THEN now() - interval '3 hours'
                  WHEN c.status = 'RUNNING' THEN now() - interval '5 seconds'
                  WHEN c.status <> 'PENDING' THEN c.created + interval '1 minute' + (i % 40) * interval '1 minute' END AS heartbeat,
             CASE WHEN c.status IN ('COMPLETED','FAILED','CANCELLED') THEN c.created + interval '1 minute' + (i % 40) * interval '1 minute' END AS completed
    ) s`);
  await target.exec(`ALTER TABLE "Task" ENABLE TRIGGER USER`);
  await target.exec(`
    INSERT INTO "TaskCount" (kind, status, n, seconds, timed)
    SELECT kind, status, count(*)::int,
           COALESCE(sum(EXTRACT(EPOCH FROM "completedAt" - "startedAt")::float8) FILTER (WHERE status = 'COMPLETED'), 0),
           (count(*) FILTER (WHERE status = 'COMPLETED' AND "completedAt" IS NOT NULL AND "startedAt" IS NOT NULL))::int
    FROM "Task" GROUP BY kind, status`);
  // Three entries a task: CREATED, STARTED (or a second CREATED-time PROGRESS for pending ones), and its end or a progress report.
  await target.exec(`
    INSERT INTO "TaskEvent" ("taskId", kind, type, "fromStatus", "toStatus", progress, actor, attempt, at)
    SELECT t.id, t.kind,
           (CASE e WHEN 1 THEN 'CREATED' WHEN 2 THEN (CASE WHEN t.status = 'PENDING' THEN 'PROGRESS' ELSE 'STARTED' END)
                   ELSE (CASE WHEN t.status IN ('COMPLETED','FAILED','CANCELLED') THEN t.status::text ELSE 'PROGRESS' END) END)::"TaskEventType",
           NULL, NULL, t.progress, 'api', t.attempt,
           t."createdAt" + (e - 1) * interval '1 minute'
    FROM "Task" t CROSS JOIN generate_series(1, ${EVENTS_PER_TASK}) e`);
  await target.exec(`VACUUM ANALYZE "Task"`);
  await target.exec(`VACUUM ANALYZE "TaskEvent"`);
  await target.exec(`VACUUM ANALYZE "TaskCount"`);
  return (Date.now() - started) / 1000;
}

interface Figure {
  name: string;
  goalMs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  statement: string;
  plan: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `call` (median of `runs` after 2 warm-ups) and explains the slowest statement of its last run. */
async function measure(target: Target, name: string, goalMs: number, call: () => Promise<unknown>): Promise<Figure> {
  for (let i = 0; i < 2; i++) await call();
  const times: number[] = [];
  let statements: Statement[] = [];
  for (let i = 0; i < runs; i++) {
    captured = [];
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
    statements = captured;
  }
  const main = statements.filter((s) => !/^\s*(BEGIN|COMMIT|ROLLBACK|SELECT pg_(try_)?advisory)/i.test(s.query)).sort((a, b) => b.durationMs - a.durationMs)[0];
  let plan = '(no statement captured)';
  if (main && args.explain) {
    try {
      const params = JSON.parse(main.params) as unknown[];
      const rows = await target.raw(
        `EXPLAIN (ANALYZE, BUFFERS) ${main.query}`,
        params.map((p) => (p !== null && typeof p === 'object' && !Array.isArray(p) ? JSON.stringify(p) : p)),
      );
      plan = rows.map((r) => String(Object.values(r)[0])).join('\n');
    } catch (error) {
      plan = `(EXPLAIN failed: ${(error as Error).message})`;
    }
  }
  const figure = {
    name,
    goalMs,
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    statement: main?.query.replace(/\s+/g, ' ').trim() ?? '',
    plan,
  };
  console.log(
    `\n${target.provider} ${target.size.toLocaleString('en-US')}: ${name}: ${figure.medianMs.toFixed(1)} ms (${figure.minMs.toFixed(1)}–${figure.maxMs.toFixed(1)}), goal ≤ ${goalMs} ms`,
  );
  console.log(`  main statement: ${figure.statement.slice(0, 400)}`);
  console.log(
    plan
      .split('\n')
      .map((line) => `    ${line}`)
      .join('\n'),
  );
  return figure;
}

async function benchTarget(target: Target): Promise<{ seedSeconds: number; figures: Figure[] }> {
  console.log(`\n== ${target.provider}, ${target.size.toLocaleString('en-US')} tasks: seeding ...`);
  const seedSeconds = await seed(target);
  const [{ tasks: taskRows }] = (await target.raw(`SELECT count(*)::int AS tasks FROM "Task"`)) as [{ tasks: number }];
  const [{ events }] = (await target.raw(`SELECT count(*)::int AS events FROM "TaskEvent"`)) as [{ events: number }];
  console.log(`seeded ${taskRows} tasks, ${events} history entries in ${seedSeconds.toFixed(1)} s`);
  const bus = createEventBus();
  // The clocks put the 100 silent tasks (3 h) past a 60-minute timeout, but not past the monitor's own 4 h:
  // stuckTasks(60) finds 100, a monitor sweep finds nothing to fix.
  const services = createServices({
    prisma: target.prisma,
    clock: systemClock,
    bus,
    monitor: { enabled: false, intervalMs: 60_000, heartbeatTimeoutMs: 4 * 3600_000, stallTimeoutMs: 4 * 3600_000, action: 'cancel' },
    log: pino({ level: 'silent' }),
  });
  const page = { take: 21, skip: 0 };
  const figures: Figure[] = [];
  const add = async (name: string, goal: number, call: () => Promise<unknown>) => figures.push(await measure(target, name, goal, call));
  await add('taskStats', 200, () => services.stats.taskStats());
  await add('tasks(first:20) with totalCount', 50, () => Promise.all([services.tasks.list({}, page), services.tasks.count({})]));
  await add('tasks(first:20, status:[COMPLETED]) with totalCount', 50, () =>
    Promise.all([services.tasks.list({ status: [TaskStatus.COMPLETED] }, page), services.tasks.count({ status: [TaskStatus.COMPLETED] })]),
  );
  await add('tasks(first:20, status:[COMPLETED,FAILED], kind:"optimize") with totalCount', 50, () =>
    Promise.all([
      services.tasks.list({ status: [TaskStatus.COMPLETED, TaskStatus.FAILED], kind: 'optimize' }, page),
      services.tasks.count({ status: [TaskStatus.COMPLETED, TaskStatus.FAILED], kind: 'optimize' }),
    ]),
  );
  const deep = await services.tasks.list({}, { take: 1, skip: 5000 });
  await add('tasks(first:20, after: 5,000 rows in)', 50, () => services.tasks.list({}, { take: 21, skip: 1, cursor: { id: deep[0]!.id } }));
  await add('tasks(search:"bt 12345") with totalCount', 50, () =>
    Promise.all([services.tasks.list({ search: 'bt 12345' }, page), services.tasks.count({ search: 'bt 12345' })]),
  );
  await add('stuckTasks(timeoutMinutes:60)', 100, () => services.tasks.stuck(services.monitor.rules(60 * 60_000)));
  await add('cleanupStuck(autoFix:false)', 100, () => services.monitor.cleanup({ timeoutMs: 60 * 60_000, autoFix: false, action: 'cancel' }));
  await add('sweep with nothing to fix', 100, () => services.monitor.sweepNow());
  bus.endSubscriptions();
  await bus.close();
  return { seedSeconds, figures };
}

function machine(): string {
  return `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, Node ${process.version}`;
}

async function main() {
  const results: { target: Target; seedSeconds: number; figures: Figure[] }[] = [];
  const url = process.env.BENCH_DATABASE_URL;
  const sizes = (args.sizes ?? (url ? '100000,1000000' : '')).split(',').filter(Boolean).map(Number);
  if (url) {
    for (const size of sizes) {
      const target = await openPostgres(url, size);
      try {
        results.push({ target, ...(await benchTarget(target)) });
      } finally {
        await target.close();
      }
    }
  }
  for (const size of args.pglite.split(',').filter(Boolean).map(Number)) {
    const target = await openPGlite(size);
    try {
      results.push({ target, ...(await benchTarget(target)) });
    } finally {
      await target.close();
    }
  }

  const names = results[0]?.figures.map((f) => f.name) ?? [];
  const columns = results.map((r) => `${r.target.provider} ${r.target.size.toLocaleString('en-US')}`);
  const ratio = (name: string) => {
    const pgs = results.filter((r) => r.target.provider === 'postgres');
    const small = pgs.find((r) => r.target.size === 100_000)?.figures.find((f) => f.name === name);
    const big = pgs.find((r) => r.target.size === 1_000_000)?.figures.find((f) => f.name === name);
    return small && big ? (big.medianMs / small.medianMs).toFixed(2) : '-';
  };
  const lines = [
    '',
    `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, \`npm run bench:scale${args.sizes ? ` -- --sizes ${args.sizes}` : ''}\``,
    '',
    `Machine: ${machine()}. Medians of ${runs} runs after 2 warm-ups (min–max in the log); ${RUNNING.toLocaleString('en-US')} running (${SILENT} silent), ${PENDING.toLocaleString('en-US')} pending, the rest finished over 23 days, ${EVENTS_PER_TASK} history entries a task. Seeding: ${results.map((r, i) => `${columns[i]} ${r.seedSeconds.toFixed(0)} s`).join(', ')}.`,
    '',
    `| figure (ms) | goal | ${columns.join(' | ')} | 1M / 100k (Postgres) |`,
    `|---|---|${columns.map(() => '---|').join('')}---|`,
    ...names.map(
      (name) =>
        `| ${name} | ≤ ${results[0]!.figures.find((f) => f.name === name)!.goalMs} | ${results.map((r) => r.figures.find((f) => f.name === name)!.medianMs.toFixed(1)).join(' | ')} | ${ratio(name)} |`,
    ),
    '',
  ];
  const heading = '## Data at scale';
  const intro = `${heading}\n\nWritten by \`npm run bench:scale\` (scripts/bench-scale.ts); each run appends a table here. The plans (EXPLAIN ANALYZE, BUFFERS) of each figure's main statement are in the command's output.\n`;
  if (!existsSync(args.output)) writeFileSync(args.output, `# Benchmarks\n\n${intro}`);
  else if (!readFileSync(args.output, 'utf8').includes(heading)) appendFileSync(args.output, `\n${intro}`);
  // Appended under its own heading (the last section of the file, or placed after the others).
  const text = readFileSync(args.output, 'utf8');
  const start = text.indexOf(heading);
  const next = text.indexOf('\n## ', start + heading.length);
  const updated =
    next < 0 ? `${text.replace(/\n*$/, '\n')}${lines.join('\n')}` : `${text.slice(0, next).replace(/\n*$/, '\n')}${lines.join('\n')}\n${text.slice(next)}`;
  writeFileSync(args.output, updated);
  console.log(lines.join('\n'));
  console.log(`appended to ${args.output}`);
}

await main();
