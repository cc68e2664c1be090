// A simulated backtest worker for the chaos suite: the real SDK in a child process (so it can be
// killed, paused, or cut off at the proxy). It tells the suite over IPC what the server acknowledged
// and what it refused.
//   params.seconds: how long the backtest runs; params.behaviour: ok | fail (throws) | freeze (90% "saving results", heartbeating)
import pino from 'pino';
import { createWorker } from '../../src/worker/index.js';

const send = (message: Record<string, unknown>) => process.send?.({ ...message, at: Date.now() });
const workerId = process.env.WORKER_ID!;

const worker = createWorker({
  url: process.env.TASKWARDEN_URL!,
  workerId,
  kinds: ['backtest'],
  concurrency: Number(process.env.CONCURRENCY ?? 2),
  progressInterval: 250,
  pollInterval: 100,
  maxPollInterval: 400,
  finishRetries: 20,
  handleSignals: false,
  // CHAOS_WORKER_LOG=info (or debug) prints what each worker did, to look into a run.
  logger: pino({ level: process.env.CHAOS_WORKER_LOG ?? 'silent', base: { workerId } }, pino.destination(2)),
  handler: async (task, ctx) => {
    const { seconds, behaviour } = task.params as { seconds: number; behaviour: string };
    const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (behaviour === 'freeze') {
      ctx.progress(90, 'saving results');
      await aborted;
      return null;
    }
    const started = Date.now();
    while (!ctx.signal.aborted && Date.now() - started < seconds * 1000) {
      await Promise.race([aborted, new Promise((r) => setTimeout(r, 100))]);
      ctx.progress(Math.min(99, ((Date.now() - started) / (seconds * 1000)) * 100), 'simulating trades');
    }
    if (behaviour === 'fail') throw new Error('division by zero in position sizing');
    return { trades: Math.round(seconds * 10) };
  },
});

worker.on('task:started', (task) => send({ type: 'started', taskId: task.id, workerId }));
worker.on('task:completed', (task) => send({ type: 'completed', taskId: task.id, workerId }));
worker.on('task:failed', (task) => send({ type: 'failed', taskId: task.id, workerId }));
worker.on('task:lost', (task, info) => send({ type: 'lost', taskId: task.id, workerId, code: info.code ?? null }));
process.on('disconnect', () => process.exit(0));
