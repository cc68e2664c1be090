// A worker process for the detection tests: the real SDK in its own process, so
// that it can be killed with SIGKILL or outlive a server restart. It tells the
// test what happens over IPC.
//   MODE=progress: each task reports steadily changing progress for params.seconds, then completes;
//   MODE=freeze:   each task goes to 90% "saving results" and stays there, heartbeating.
import pino from 'pino';
import { createWorker } from '../../src/worker/index.js';

const send = (message: Record<string, unknown>) => process.send?.(message);
const mode = process.env.MODE ?? 'progress';

const worker = createWorker({
  url: process.env.TASKWARDEN_URL!,
  kinds: [process.env.KIND ?? 'backtest'],
  concurrency: Number(process.env.CONCURRENCY ?? 1),
  progressInterval: Number(process.env.PROGRESS_INTERVAL ?? 1000),
  pollInterval: 100,
  maxPollInterval: 500,
  handleSignals: false,
  logger: pino({ level: process.env.WORKER_LOG ?? 'silent' }, pino.destination(2)),
  handler: async (task, ctx) => {
    const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (mode === 'freeze') {
      ctx.progress(90, 'saving results');
      send({ type: 'frozen', taskId: task.id });
      await aborted;
      return null;
    }
    const { seconds } = task.params as { seconds: number };
    const started = Date.now();
    while (!ctx.signal.aborted && Date.now() - started < seconds * 1000) {
      await Promise.race([aborted, new Promise((r) => setTimeout(r, 200))]);
      ctx.progress(Math.min(99, ((Date.now() - started) / (seconds * 1000)) * 100), 'simulating trades');
    }
    return { trades: 42 };
  },
});

worker.on('task:started', (task) => send({ type: 'started', taskId: task.id }));
worker.on('task:completed', (task) => send({ type: 'completed', taskId: task.id }));
worker.on('task:lost', (task, info) => send({ type: 'lost', taskId: task.id, ...info }));
process.on('disconnect', () => process.exit(0));
