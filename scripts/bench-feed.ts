// `npx tsx scripts/bench-feed.ts`: what the event feed costs on the progress hot path, in one run.
//   reports/s, 8 workers flat out: with nobody subscribed (the feed idle) against one taskUpdated subscriber (the feed reading)
//   report -> subscriber latency, paced: the writer's own publish ('task:updated', how live updates travelled before)
//   against the feed's 'task:settled' (how they travel now) and a graphql-ws taskUpdated subscriber at the end of it
// Runs on embedded PGlite, or on PostgreSQL when BENCH_DATABASE_URL is set.
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import pino from 'pino';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/open.js';
import { startTaskwarden } from '../src/server/taskwarden.js';

const { values: args } = parseArgs({ options: { reports: { type: 'string', default: '1000' }, paced: { type: 'string', default: '200' } } });
const url = process.env.BENCH_DATABASE_URL;
const db = await openDatabase(url ? { url } : { memory: true });
await db.prisma.$executeRawUnsafe('TRUNCATE "Task", "TaskDependency", "TaskEvent", "MonitorSweep"');
const config = loadConfig({ PORT: '0', MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent' });
const server = await startTaskwarden({ config, log: pino({ level: 'silent' }), db });
const { tasks, bus } = server.services;
const leases = await Promise.all(Array.from({ length: 8 }, async (_, i) => tasks.start((await tasks.create({ name: `bench ${i}` })).id, `w${i}`)));
let step = 0;
const report = ({ task, leaseToken }: (typeof leases)[number]) => tasks.reportProgress(task.id, leaseToken, { message: `step ${step++}` });

async function flatOut(n: number) {
  let sent = 0;
  const start = performance.now();
  await Promise.all(
    leases.map(async (lease) => {
      while (sent++ < n) await report(lease);
    }),
  );
  return Math.round((n / (performance.now() - start)) * 1000);
}

await flatOut(Number(args.reports) / 4); // warm-up
const idle = await flatOut(Number(args.reports));

// One graphql-ws subscriber: the feed now reads after every wakeup.
const ws = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket });
const arrivals = new Map<string, number>();
ws.subscribe(
  { query: 'subscription { taskUpdated { message } }' },
  { next: (m: any) => arrivals.set(m.data.taskUpdated.message, performance.now()), error: () => {}, complete: () => {} },
);
while (bus.subscriberCount('task:settled') < 1) await new Promise((r) => setTimeout(r, 10));
const following = await flatOut(Number(args.reports));

// Paced, one report at a time (about 50/s): where each report's event is heard, and when.
const published = new Map<string, number>();
const settled = new Map<string, number>();
const stopPublished = bus.listen('task:updated', (c) => published.set(c.event.message!, performance.now()));
const stopSettled = bus.listen('task:settled', (c) => settled.set(c.event.message!, performance.now()));
const sentAt = new Map<string, number>();
for (let i = 0; i < Number(args.paced); i++) {
  const message = `step ${step}`;
  sentAt.set(message, performance.now());
  await report(leases[i % leases.length]!);
  await new Promise((r) => setTimeout(r, 20));
}
await new Promise((r) => setTimeout(r, 1000));
stopPublished();
stopSettled();
const latency = (heard: Map<string, number>) => {
  const xs = [...sentAt].flatMap(([m, t]) => (heard.has(m) ? [heard.get(m)! - t] : [])).sort((a, b) => a - b);
  const at = (q: number) => (xs.length ? +xs[Math.floor(xs.length * q)]!.toFixed(2) : NaN);
  return { 'p50 ms': at(0.5), 'p99 ms': at(0.99), heard: xs.length, of: sentAt.size };
};
console.log(`database: ${url ? 'postgres' : 'pglite'}`);
console.table([
  { scenario: 'reports/s, 8 workers, nobody subscribed (feed idle)', value: idle },
  { scenario: 'reports/s, 8 workers, one taskUpdated subscriber (feed reading)', value: following },
  { scenario: 'ratio following/idle', value: +(following / idle).toFixed(2) },
]);
console.table({
  "report -> writer's publish (task:updated, the old live path)": latency(published),
  'report -> feed (task:settled, the new live path)': latency(settled),
  'report -> graphql-ws taskUpdated subscriber': latency(arrivals),
});
await ws.dispose();
await server.stop();
await db.close();
