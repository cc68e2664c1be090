// An instance that dies between commit and publish: it opens the database and the Redis bus like a
// server, makes one write (WRITE=create, or WRITE=start with TASK_ID), and is killed (SIGKILL) the
// moment the write, already committed, is about to be published. Prints the task id first.
import pino from 'pino';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/open.js';
import { createEventBus } from '../../src/events.js';
import { createServices } from '../../src/services.js';

const config = loadConfig({ DATABASE_URL: process.env.DATABASE_URL!, REDIS_URL: process.env.REDIS_URL!, MONITOR_ENABLED: 'false', LOG_LEVEL: 'silent' });
const db = await openDatabase({ url: process.env.DATABASE_URL! });
const bus = createEventBus({ redisUrl: config.redisUrl });
const publish = bus.publish.bind(bus);
bus.publish = (topic, payload) => {
  if (topic === 'task:updated') {
    process.stdout.write(`committed ${(payload as { event: { taskId: string } }).event.taskId}\n`, () => process.kill(process.pid, 'SIGKILL'));
    // Nothing after this line runs: the process is gone before the publish.
    return;
  }
  publish(topic, payload);
};
const { tasks } = createServices({ prisma: db.prisma, clock: systemClock, bus, monitor: config.monitor, log: pino({ level: 'silent' }) });
if (process.env.WRITE === 'start') await tasks.start(process.env.TASK_ID!, 'doomed-worker');
else await tasks.create({ name: 'made by an instance that died' });
await new Promise(() => {});
