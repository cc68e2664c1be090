// One simulated backtest worker, run by the simulator as its own process so
// that it can really be killed (SIGKILL) or paused (SIGSTOP). It reports what
// happens to the simulator over IPC.
import pino from 'pino';
import { createWorker } from '../worker/index.js';
import type { Scenario } from './scenarios.js';

const send = (message: Record<string, unknown>) => process.send?.(message);
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

const worker = createWorker({
  url: process.env.TASKWARDEN_URL!,
  token: process.env.TASKWARDEN_TOKEN,
  workerId: process.env.WORKER_ID,
  kinds: (process.env.WORKER_KINDS ?? 'backtest').split(','),
  concurrency: 1,
  // No heartbeatInterval: the SDK beats at the pace each lease asks (a third of the heartbeat timeout).
  progressInterval: 250,
  pollInterval: 200,
  maxPollInterval: 1000,
  // The zombie learns it lost its task only when its first late write is refused.
  subscribe: process.env.WORKER_SUBSCRIBE !== 'false',
  logger: pino({ level: process.env.DEMO_WORKER_LOG ?? 'silent' }, pino.destination(2)),
  handler: async (task, ctx) => {
    const { scenario, seconds, symbol } = task.params as { scenario: Scenario; seconds: number; symbol: string };
    const steps = 20;
    for (let step = 1; step <= steps && !ctx.signal.aborted; step++) {
      await sleep((seconds * 1000) / steps, ctx.signal);
      const progress = Math.min(90, (step / steps) * 100);
      ctx.progress(progress, progress < 90 ? 'simulating trades' : 'saving results');
      if (scenario === 'error' && step === 12) throw new Error(`division by zero in position sizing for ${symbol}`);
      if (scenario === 'crash' && step === 10) {
        send({ type: 'dying', taskId: task.id });
        await new Promise((r) => setTimeout(r, 100));
        process.kill(process.pid, 'SIGKILL');
      }
      if (scenario === 'zombie' && step === 12) send({ type: 'pause-me', taskId: task.id });
    }
    // Alive but frozen: heartbeats go on (the SDK sends them), progress never moves again.
    if (scenario === 'freeze') await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (ctx.signal.aborted) return;
    return { sharpe: +(0.5 + Math.random() * 1.5).toFixed(2), maxDrawdown: -+(Math.random() * 0.3).toFixed(3), trades: 120 + Math.floor(Math.random() * 400) };
  },
});

worker.on('task:started', (task) => send({ type: 'started', taskId: task.id }));
worker.on('task:lost', (task, info) => send({ type: 'lost', taskId: task.id, ...info }));
process.on('disconnect', () => void worker.stop().then(() => process.exit(0)));
