// `npm run demo`: watch Taskwarden catch stuck backtests in about a minute.
// It starts a server (embedded database, short monitor settings) unless --url
// names one, submits fake backtests, runs simulated workers through the SDK,
// injects failures, and checks that every one was caught and handled.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { Command } from 'commander';
import pc from 'picocolors';
import pino from 'pino';
import WebSocket from 'ws';
import { createTaskwardenClient } from '../client/client.js';
import { isTerminal } from '../client/index.js';
import { loadConfig } from '../config.js';
import { startTaskwarden, type Taskwarden } from '../server/taskwarden.js';
import { expectations, makeBatch, makeChain, makeUrgent, type DemoTask, type Scenario } from './scenarios.js';

const program = new Command('demo')
  .description('Submits fake backtests, injects failures, and shows Taskwarden catching every stuck one.')
  .option('--url <url>', 'use a running Taskwarden instead of starting one (e.g. http://localhost:4000/graphql)')
  .option('--token <token>', 'API token for --url', process.env.TASKWARDEN_TOKEN)
  .option('--tasks <n>', 'backtests to submit', (v) => Number.parseInt(v, 10), 14)
  .option('--workers <n>', 'simulated worker processes', (v) => Number.parseInt(v, 10), 4)
  .option('--timeout <seconds>', 'give up after this long', (v) => Number.parseInt(v, 10), 150)
  .option('--plain', 'print events line by line instead of live progress bars (default when not on a terminal)')
  .addHelpText('after', '\nExamples:\n  npm run demo\n  npm run demo -- --tasks 8 --workers 3\n  npm run demo -- --url http://localhost:4000/graphql');
program.parse();
const opts = program.opts<{ url?: string; token?: string; tasks: number; workers: number; timeout: number; plain?: boolean }>();

// The demo's own short clocks: silence is judged in seconds, a stalled phase a little later.
const HEARTBEAT_SECONDS = 4;
const STALL_SECONDS = 8;
const plain = opts.plain || !process.stdout.isTTY;
// Built (dist/demo/main.js), the workers run the built script too, with no TypeScript loader.
const fromSources = import.meta.url.endsWith('.ts');
const workerScript = fileURLToPath(new URL(fromSources ? './worker-process.ts' : './worker-process.js', import.meta.url));

interface Tracked extends DemoTask {
  id: string;
  status: string;
  progress: number;
  message: string;
  bar?: SingleBar;
  detected?: string;
  /** What the verdict table shows as injected, when it is not the scenario (a chain step, the priority jump). */
  role?: string;
  /** The chain step before it: this one must start only after that one COMPLETED. */
  after?: string;
  /** The priority run: it must start before each of these, which were waiting when it was submitted. */
  ahead?: string[];
}

async function main(): Promise<number> {
  let server: Taskwarden | undefined;
  let url = opts.url;
  if (!url) {
    const config = loadConfig({
      PORT: process.env.PORT ?? '0',
      DATA_DIR: 'memory',
      MONITOR_INTERVAL: '1s',
      HEARTBEAT_TIMEOUT: `${HEARTBEAT_SECONDS}s`,
      STALL_TIMEOUT: `${STALL_SECONDS}s`,
      MONITOR_ACTION: 'cancel',
      LOG_LEVEL: 'silent',
    });
    server = await startTaskwarden({ config, log: pino({ level: 'silent' }) });
    url = server.url;
    console.log(
      pc.bold(`Taskwarden started for the demo at ${url}`) +
        pc.dim(` (embedded database in memory, monitor every 1s, no heartbeat for ${HEARTBEAT_SECONDS}s or no progress for ${STALL_SECONDS}s is stuck)`),
    );
  }
  const client = createTaskwardenClient({ url, token: opts.token, webSocketImpl: WebSocket });
  const { monitor } = await client.stats();
  // A server with the usual hour-long timeout would not catch anything within a minute: act as its operator.
  const operatorSweeps = !monitor.enabled || monitor.stallTimeoutMinutes * 60 > STALL_SECONDS * 3 || monitor.heartbeatTimeoutSeconds > STALL_SECONDS * 3;
  if (operatorSweeps) {
    console.log(
      pc.yellow(
        `The server's monitor waits ${monitor.heartbeatTimeoutSeconds} s for a heartbeat and ${monitor.stallTimeoutMinutes} min for progress; the demo will run cleanupStuck(${STALL_SECONDS}s) every 2s instead.`,
      ),
    );
  }

  const batch = makeBatch(opts.tasks);
  const chain = makeChain();
  const tasks = new Map<string, Tracked>();
  // One createTasks call: the backtests and a walk-forward chain whose steps wait for each other (dependsOnIndex).
  const created = await client.createTasks([
    ...batch.map((item) => ({ name: item.name, kind: kindFor(item.scenario), params: item.params })),
    ...chain.map((item, i) => ({ name: item.name, kind: 'backtest', params: item.params, dependsOnIndex: i === 0 ? [] : [batch.length + i - 1] })),
  ]);
  [...batch, ...chain].forEach((item, i) => {
    const isChain = i >= batch.length;
    const step = i - batch.length;
    tasks.set(created[i]!.id, {
      ...item,
      id: created[i]!.id,
      status: created[i]!.status,
      progress: 0,
      message: 'waiting',
      ...(isChain && { role: `chain ${step + 1}/${chain.length}`, after: step > 0 ? created[i - 1]!.id : undefined }),
    });
  });
  console.log(
    `Submitted ${batch.length} backtests in one batch: ${summarize(batch)}; and a chain of ${chain.length} (${chain.map((c) => c.name.split(': ')[1]).join(' -> ')}), each step waiting for the one before.\n`,
  );

  // Once the sweep runs, a short research run arrives with priority 10: it goes before everything waiting.
  let jumped = false;
  const jumpTheQueue = async () => {
    if (jumped) return;
    jumped = true;
    const urgent = makeUrgent();
    const task = await client.createTask({ name: urgent.name, kind: 'backtest', params: urgent.params, priority: 10 });
    // What still waits once it exists (a claim that ran before it may rightly have taken another).
    const waiting = (await client.listTasks({ status: ['PENDING'], first: 100 })).edges
      .map((e) => e.node)
      .filter((t) => t.waitingFor === null && t.kind === 'backtest' && t.id !== task.id);
    tasks.set(task.id, { ...urgent, id: task.id, status: task.status, progress: 0, message: 'waiting', role: 'priority 10', ahead: waiting.map((t) => t.id) });
    say(`${pc.dim(time())} ${pc.blue('PRIORITY')}  ${urgent.name} submitted while ${waiting.length} backtests wait: it is claimed first`);
  };

  const bars = plain
    ? undefined
    : new MultiBar({ format: '{status} {bar} {percentage}% | {name} {message}', hideCursor: true, clearOnComplete: false, barsize: 24 }, Presets.shades_grey);
  const say = (line: string) => (bars ? bars.log(`${line}\n`) : console.log(line));
  for (const task of tasks.values()) {
    task.bar = bars?.create(100, 0, { status: badge('PENDING'), name: task.name.padEnd(34), message: '' });
  }
  const redraw = (task: Tracked) =>
    task.bar?.update(Math.round(task.progress), { status: badge(task.status), message: pc.dim(task.message ?? ''), name: task.name.padEnd(34) });

  // Live: every change and every stuck alert, as a dashboard would see them.
  const unsubscribeUpdates = client.onTaskUpdated(
    {},
    {
      next: (event) => {
        const task = tasks.get(event.taskId);
        if (!task) return;
        task.status = event.toStatus ?? task.status;
        task.progress = event.progress ?? task.progress;
        task.message = event.message ?? task.message;
        redraw(task);
        if (event.type === 'STARTED') void jumpTheQueue();
        if (plain && event.type !== 'PROGRESS')
          say(`${pc.dim(time())} ${event.type.padEnd(9)} ${task.name} ${pc.dim(`by ${event.actor}${event.reason ? `: ${event.reason}` : ''}`)}`);
      },
    },
  );
  const unsubscribeAlerts = client.onStuckTask({
    next: (alert) => {
      const task = tasks.get(alert.task.id);
      if (!task) return;
      task.detected = alert.reason;
      say(`${pc.dim(time())} ${pc.red('STUCK')}     ${task.name}: ${alert.reason} for ${alert.stuckForSeconds.toFixed(0)}s -> ${alert.actionTaken}`);
      if (task.scenario === 'zombie') resumeZombie();
    },
  });

  // Workers: separate processes, so one can really be killed or paused.
  const children = new Set<ChildProcess>();
  let stopping = false;
  let zombie: ChildProcess | undefined;
  let zombiePaused = false;
  let zombieRefused = false;
  let workerCount = 0;
  const spawnWorker = (kinds: string, subscribe = true) => {
    const child = fork(workerScript, [], {
      execArgv: fromSources ? ['--import', 'tsx'] : [],
      env: {
        ...process.env,
        TASKWARDEN_URL: url,
        TASKWARDEN_TOKEN: opts.token ?? '',
        WORKER_ID: `sim-worker-${++workerCount}`,
        WORKER_KINDS: kinds,
        WORKER_SUBSCRIBE: String(subscribe),
      },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    children.add(child);
    child.on('message', (message: { type: string; taskId?: string; code?: string }) => {
      const task = message.taskId ? tasks.get(message.taskId) : undefined;
      if (message.type === 'dying' && task) say(`${pc.dim(time())} ${pc.magenta('KILL -9')}   the worker running ${task.name}`);
      if (message.type === 'pause-me' && task) {
        child.kill('SIGSTOP');
        zombiePaused = true;
        say(`${pc.dim(time())} ${pc.magenta('SIGSTOP')}   the worker running ${task.name} (it will come back as a zombie)`);
      }
      if (message.type === 'lost' && task?.scenario === 'zombie' && message.code === 'LEASE_MISMATCH') {
        zombieRefused = true;
        say(`${pc.dim(time())} ${pc.green('REFUSED')}   the zombie's late write to ${task.name}: LEASE_MISMATCH, nothing written`);
      }
    });
    child.on('exit', (_code, signal) => {
      children.delete(child);
      if (!stopping && signal === 'SIGKILL' && child !== zombie) spawnWorker(kinds, subscribe);
    });
    return child;
  };
  function resumeZombie() {
    if (zombie && zombiePaused) {
      zombiePaused = false;
      zombie.kill('SIGCONT');
      say(`${pc.dim(time())} ${pc.magenta('SIGCONT')}   the zombie worker wakes up and tries to carry on`);
    }
  }
  for (let i = 0; i < opts.workers; i++) spawnWorker('backtest');
  zombie = spawnWorker('backtest-zombie', false);

  const operator = operatorSweeps
    ? setInterval(() => void client.cleanupStuck({ timeoutMinutes: STALL_SECONDS / 60, autoFix: true }).catch(() => {}), 2000)
    : undefined;

  const deadline = Date.now() + opts.timeout * 1000;
  const settled = () => [...tasks.values()].every((t) => isTerminal(t.status)) && zombieRefused;
  while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));

  stopping = true;
  clearInterval(operator);
  resumeZombie();
  unsubscribeUpdates();
  unsubscribeAlerts();
  bars?.stop();
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.disconnect();
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );

  // The verdict: what each task became, against what the simulator injected.
  const startedAt = async (id: string) => (await client.getTask(id))?.events.find((e) => e.type === 'STARTED')?.at;
  const completedAt = async (id: string) => (await client.getTask(id))?.events.find((e) => e.type === 'COMPLETED')?.at;
  /** A chain step started only after the step before it completed; the priority run started before every task that was waiting. */
  const scheduledAsAsked = async (task: Tracked) => {
    const started = await startedAt(task.id);
    if (task.after) {
      const before = await completedAt(task.after);
      return started !== undefined && before !== undefined && started >= before;
    }
    if (task.ahead) {
      const others = await Promise.all(task.ahead.map(startedAt));
      return started !== undefined && others.every((at) => at === undefined || at >= started);
    }
    return true;
  };
  const table = new Table({
    head: ['backtest', 'injected', 'expected', 'outcome', 'ended by', 'ok'],
    style: pc.isColorSupported ? { head: ['bold'] } : { head: [], border: [] },
  });
  let failures = 0;
  for (const task of tasks.values()) {
    const full = await client.getTask(task.id);
    const last = full?.events.filter((e) => e.type !== 'PROGRESS' && e.type !== 'STUCK').at(-1);
    const expected = expectations[task.scenario];
    const endedBy = last ? (last.actor === 'monitor' || last.actor === 'operator' ? `${last.actor}: ${last.reason}` : `worker ${last.actor}`) : '?';
    const ok =
      full?.status === expected.status &&
      (expected.by === 'worker' ? last?.actor !== 'monitor' && last?.actor !== 'operator' : last?.reason === expected.by) &&
      (task.scenario !== 'zombie' || (zombieRefused && full.result === null)) &&
      (await scheduledAsAsked(task));
    if (!ok) failures++;
    const expectedText = task.after
      ? 'COMPLETED (after its step)'
      : task.ahead
        ? `COMPLETED (first of ${task.ahead.length} waiting)`
        : `${expected.status} (${expected.by === 'worker' ? 'by its worker' : expected.by})`;
    table.push([task.name, task.role ?? task.scenario, expectedText, full?.status ?? 'missing', endedBy, ok ? pc.green('yes') : pc.red('NO')]);
  }
  console.log(`\n${table.toString()}`);
  if (!zombieRefused) {
    failures++;
    console.log(pc.red('The zombie worker never had a late write refused.'));
  }
  const stats = await client.stats();
  console.log(
    `\n${stats.taskStats.completed} completed, ${stats.taskStats.failed} failed, ${stats.taskStats.cancelled} cancelled; ` +
      `monitor: last sweep ${stats.monitor.lastSweepAt ? 'found ' + stats.monitor.lastSweepFound : 'not yet'}.`,
  );
  console.log(
    failures === 0
      ? pc.green(pc.bold('Every injected failure was caught and handled.'))
      : pc.red(pc.bold(`${failures} outcome(s) did not match what was injected.`)),
  );
  await client.close();
  await server?.stop();
  return failures === 0 ? 0 : 1;
}

function kindFor(scenario: Scenario) {
  return scenario === 'zombie' ? 'backtest-zombie' : 'backtest';
}

function summarize(batch: DemoTask[]) {
  const counts = new Map<Scenario, number>();
  for (const item of batch) counts.set(item.scenario, (counts.get(item.scenario) ?? 0) + 1);
  return [...counts].map(([scenario, n]) => `${n} ${scenario} (${expectations[scenario].describe})`).join(', ');
}

function badge(status: string) {
  const color = { PENDING: pc.dim, RUNNING: pc.cyan, COMPLETED: pc.green, FAILED: pc.red, CANCELLED: pc.yellow }[status] ?? pc.white;
  return color(status.padEnd(9));
}

function time() {
  return new Date().toISOString().slice(11, 19);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo: ${(error as Error).message}`);
    process.exit(1);
  },
);
