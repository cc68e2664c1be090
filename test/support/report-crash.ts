// A worker-side process that reports progress on one task as fast as it can, alone and in batches,
// over the real services, and prints "ack <progress>" for each report the moment it is acknowledged.
// The test kills it (SIGKILL) mid-stream, reopens the database and checks that every acknowledged
// report is there. TARGET is a DatabaseTarget as JSON; TASK_ID and LEASE name the task.
import pino from 'pino';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/open.js';
import { createEventBus } from '../../src/events.js';
import { createServices } from '../../src/services.js';

const db = await openDatabase(JSON.parse(process.env.TARGET!));
const config = loadConfig({ MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent' });
const { tasks } = createServices({
  prisma: db.prisma,
  query: db.query,
  clock: systemClock,
  bus: createEventBus(),
  monitor: config.monitor,
  log: pino({ level: 'silent' }),
});
const id = process.env.TASK_ID!;
const leaseToken = process.env.LEASE!;
process.stdout.write('ready\n');
// Progress only rises, so the database must hold at least the last value acknowledged.
for (let step = 1; step <= 9_000; step++) {
  const progress = step / 100;
  const reports = Array.from({ length: 1 + (step % 3) }, () => tasks.reportProgress(id, leaseToken, { progress }));
  if (step % 2 === 0)
    reports.push(
      tasks
        .reportProgressBatch([{ id, leaseToken, progress }])
        .then(([result]) => (result!.accepted ? undefined : Promise.reject(new Error(String(result)))) as never),
    );
  await Promise.all(reports);
  process.stdout.write(`ack ${progress}\n`);
}
await new Promise(() => {});
