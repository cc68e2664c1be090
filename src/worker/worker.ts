import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import WebSocket from 'ws';
import { createTaskwardenClient, TaskwardenClientError, type TaskwardenClient } from '../client/client.js';
import type { TaskFieldsFragment } from '../generated/graphql/graphql.js';
import { createReporter, type Report } from './reporter.js';

/** The task a handler runs, as it was when claimed. */
export type WorkerTask = TaskFieldsFragment;

export interface TaskContext {
  /**
   * Reports progress (0..100) and, optionally, the current phase. Calls are
   * coalesced: however tight the loop, at most one write per `progressInterval`
   * reaches the server, always carrying the latest values.
   */
  progress(percent: number, message?: string): void;
  /** Proves the worker is alive now (heartbeats also go out on their own every `heartbeatInterval`). */
  heartbeat(): Promise<void>;
  /**
   * Fires when the task is no longer this worker's: stopped, force-completed,
   * requeued or claimed elsewhere, or refused with LEASE_MISMATCH; also when the
   * worker shuts down past its drain deadline. Check it in long loops.
   */
  signal: AbortSignal;
  log: Logger;
}

export type TaskHandler = (task: WorkerTask, ctx: TaskContext) => unknown | Promise<unknown>;

export interface WorkerOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  url: string;
  token?: string;
  /** Names this worker in task histories. Default: host-pid-random. */
  workerId?: string;
  /** Kinds of task to claim. Default: any kind. */
  kinds?: string[];
  /** Tasks run at once. Default 1. */
  concurrency?: number;
  /**
   * Milliseconds between automatic heartbeats while a handler runs (any write counts as one).
   * Default: what each lease asks for (`heartbeatIntervalSeconds`, a third of the task's heartbeat
   * timeout). When given, it wins, with a warning if it is slower than the lease asks.
   */
  heartbeatInterval?: number;
  /** Least milliseconds between two progress writes. Default 1 000. */
  progressInterval?: number;
  /** Idle polling backs off from this to `maxPollInterval` (ms, with jitter). Default 1 000. */
  pollInterval?: number;
  /** Default 30 000. */
  maxPollInterval?: number;
  /** How long stop() waits for running handlers before handing their tasks back. Default 30 000 ms. */
  drainTimeout?: number;
  /** How many times completeTask/failTask are retried on network errors. Default 8 (about a minute). */
  finishRetries?: number;
  /** Drain on SIGTERM and SIGINT, then let the signal take its course. Default true. */
  handleSignals?: boolean;
  /** Start claiming at once. Default true; otherwise call start(). */
  autoStart?: boolean;
  /**
   * Hear of new work and of tasks taken away through the taskUpdated
   * subscription. Default true. Without it the worker polls, and learns that a
   * task was taken away from the server's answer to its next heartbeat.
   */
  subscribe?: boolean;
  logger?: Logger;
  handler: TaskHandler;
}

/** What a worker tells its host program, named `noun:verb`. */
export interface WorkerEvents {
  'task:started': [task: WorkerTask];
  'task:completed': [task: WorkerTask, result: unknown];
  'task:failed': [task: WorkerTask, error: string];
  /** The task stopped being this worker's; `code` is LEASE_MISMATCH when the server refused one of its writes. */
  'task:lost': [task: WorkerTask, info: { reason: string; code?: string }];
  'task:released': [task: WorkerTask, reason: string];
  'worker:stopped': [];
}

export interface Worker extends EventEmitter<WorkerEvents> {
  readonly workerId: string;
  /** Tasks whose handlers are running now. */
  readonly running: number;
  start(): void;
  /** Claims nothing new; waits for running handlers up to the drain deadline, then hands the rest back. */
  stop(): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>;
}

const DEFAULTS = {
  concurrency: 1,
  progressInterval: 1_000,
  pollInterval: 1_000,
  maxPollInterval: 30_000,
  drainTimeout: 30_000,
  finishRetries: 8,
};

/**
 * A worker that claims tasks and runs a handler for each, doing the parts
 * that leave tasks stuck when done by hand: heartbeats while the handler runs,
 * completion or failure written whatever the handler does (retried through
 * network errors, always with the lease), and an abort signal when the task
 * is taken away. A LEASE_MISMATCH is never retried: the task is not ours.
 */
export function createWorker(options: WorkerOptions): Worker {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = (options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ workerId });
  const client: TaskwardenClient = createTaskwardenClient({ url: options.url, token: options.token, webSocketImpl: WebSocket });
  // Every running task's heartbeats and progress go out together, one request per round trip.
  const reporter = createReporter(client);
  const active = new Map<string, RunningTask>();
  const warnedSlow = new Set<number>();

  /** The lease's pace, unless the caller chose one (then warn once per pace it is too slow for). */
  function heartbeatEvery(lease: { heartbeatIntervalSeconds: number }): number {
    const asked = lease.heartbeatIntervalSeconds * 1000;
    if (options.heartbeatInterval === undefined) return asked;
    if (options.heartbeatInterval > asked && !warnedSlow.has(asked)) {
      warnedSlow.add(asked);
      log.warn(
        { heartbeatInterval: options.heartbeatInterval, asked },
        `heartbeatInterval ${options.heartbeatInterval} ms is slower than the server asks (${asked} ms, a third of the task's heartbeat timeout): its tasks may be found stuck (NO_HEARTBEAT) while they run`,
      );
    }
    return options.heartbeatInterval;
  }
  let started = false;
  let stopping = false;
  let wake: (() => void) | undefined;
  let unsubscribe: (() => void) | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let loop: Promise<void> | undefined;
  let stopPromise: Promise<void> | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        if (wake === done) wake = undefined;
        resolve();
      }
      wake = done;
    });

  /**
   * One followed stream tells the worker when work arrives and when one of its tasks is taken away;
   * after a reconnect or an overflow it resumes from the last entry it heard.
   */
  function listen() {
    unsubscribe = client.followTaskUpdates(
      { kinds: options.kinds },
      {
        next: (event) => {
          if (event.type === 'CREATED' || event.type === 'REQUEUED') wake?.();
          const mine = active.get(event.taskId);
          // Any change by someone else during our attempt, other than a progress report or a stuck notice, ends
          // our lease. An entry of an earlier attempt (its CREATED, the REQUEUED that freed it) may arrive after our
          // claim, when this subscription's instance reads the history later than the one that answered the claim,
          // and a resumed stream replays what came since its last entry.
          if (mine && event.attempt >= mine.task.attempt && event.actor !== workerId && event.type !== 'PROGRESS' && event.type !== 'STUCK') {
            mine.lose(`task was ${event.type.toLowerCase()} by ${event.actor}${event.reason ? ` (${event.reason})` : ''}`);
          }
        },
        // Only what following cannot resume from (a refused token): the worker polls from then on.
        error: (error) => log.debug({ err: error }, 'update subscription refused; polling instead'),
      },
    );
  }

  async function claimLoop() {
    let idle = settings.pollInterval;
    while (!stopping) {
      if (active.size >= settings.concurrency) {
        await sleep(settings.maxPollInterval);
        continue;
      }
      let lease: Awaited<ReturnType<TaskwardenClient['claimTask']>> = null;
      try {
        lease = await client.claimTask(workerId, options.kinds);
      } catch (error) {
        log.warn({ err: error }, 'could not claim a task; retrying');
      }
      if (stopping) {
        // Claimed while stopping: hand it straight back rather than start it.
        if (lease) await client.releaseTask(lease.task.id, lease.leaseToken, 'worker stopping').catch(() => {});
        break;
      }
      if (lease) {
        idle = settings.pollInterval;
        run(lease.task, lease.leaseToken, heartbeatEvery(lease));
        continue;
      }
      await sleep(idle * (0.75 + Math.random() * 0.5));
      idle = Math.min(idle * 2, settings.maxPollInterval);
    }
  }

  function run(task: WorkerTask, leaseToken: string, beatEvery: number) {
    const running = new RunningTask(task, leaseToken, beatEvery, client, reporter, settings, log.child({ taskId: task.id, task: task.name }), events);
    active.set(task.id, running);
    running
      .execute(options.handler)
      .catch((error) => running.log.error({ err: error }, 'task bookkeeping failed'))
      .finally(() => {
        active.delete(task.id);
        wake?.();
      });
  }

  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'draining before exit');
    void worker.stop().finally(() => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      // Let the signal do what it would have done without us (exit, unless the app listens too).
      process.kill(process.pid, signal);
    });
  };

  const events = new EventEmitter<WorkerEvents>();
  const worker: Worker = Object.assign(events, {
    workerId,
    get running() {
      return active.size;
    },
    stopped,
    start() {
      if (started) return;
      started = true;
      if (options.handleSignals ?? true) {
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      }
      log.info({ kinds: options.kinds ?? 'any', concurrency: settings.concurrency }, 'worker started');
      if (options.subscribe ?? true) listen();
      loop = claimLoop();
    },
    stop() {
      stopPromise ??= (async () => {
        stopping = true;
        wake?.();
        await loop;
        const deadline = Date.now() + settings.drainTimeout;
        while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        if (active.size > 0) {
          log.warn({ tasks: [...active.keys()] }, 'drain deadline passed: handing unfinished tasks back');
          await Promise.all([...active.values()].map((task) => task.handBack('worker stopped before the task finished')));
        }
        unsubscribe?.();
        await client.close();
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        log.info('worker stopped');
        events.emit('worker:stopped');
        resolveStopped();
      })();
      return stopPromise;
    },
  });
  if (options.autoStart ?? true) worker.start();
  return worker;
}

/** One claimed task: its handler, heartbeats, coalesced progress, and the final write. */
class RunningTask {
  private readonly controller = new AbortController();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private pending: { progress?: number; message?: string } | undefined;
  private reporting = false;
  private lastWrite = 0;
  /** The last report sent: the final write waits for it. */
  private writes: Promise<unknown> = Promise.resolve();
  private lost: string | undefined;
  private finished = false;

  constructor(
    readonly task: WorkerTask,
    private readonly leaseToken: string,
    /** Milliseconds of silence after which a heartbeat goes out. */
    private readonly beatEvery: number,
    private readonly client: TaskwardenClient,
    private readonly reporter: ReturnType<typeof createReporter>,
    private readonly settings: typeof DEFAULTS,
    readonly log: Logger,
    private readonly events: EventEmitter<WorkerEvents>,
  ) {}

  async execute(handler: TaskHandler) {
    this.armHeartbeat();
    this.log.info({ heartbeatEveryMs: this.beatEvery }, 'task started');
    this.events.emit('task:started', this.task);
    const ctx: TaskContext = {
      progress: (percent, message) => this.progress(percent, message),
      heartbeat: () => this.write({}).then(() => undefined),
      signal: this.controller.signal,
      log: this.log,
    };
    let result: unknown;
    let failure: unknown;
    try {
      result = await handler(this.task, ctx);
    } catch (error) {
      failure = error ?? new Error('handler threw');
    }
    this.stopTimers();
    if (this.lost) {
      this.log.warn({ reason: this.lost }, 'task was taken away while it ran; its outcome is discarded');
      return;
    }
    if (failure === undefined) {
      const completed = await this.finish('complete', () => this.client.completeTask(this.task.id, this.leaseToken, result ?? null));
      if (completed === 'done') this.events.emit('task:completed', this.task, result);
      if (completed === 'refused') {
        // The result itself was refused (e.g. too large): record that instead of leaving the task running.
        await this.finish('fail', () => this.client.failTask(this.task.id, this.leaseToken, `the result could not be stored: ${this.refusal}`));
      }
    } else {
      const error = errorText(failure);
      if ((await this.finish('fail', () => this.client.failTask(this.task.id, this.leaseToken, error))) === 'done') {
        this.events.emit('task:failed', this.task, error);
      }
    }
  }

  /** Gives the task back (RUNNING -> PENDING) and aborts the handler: used past the drain deadline. */
  async handBack(reason: string) {
    if (this.finished || this.lost) return;
    this.lose(reason);
    try {
      await this.client.releaseTask(this.task.id, this.leaseToken, reason);
      this.log.info({ reason }, 'task handed back');
      this.events.emit('task:released', this.task, reason);
    } catch (error) {
      this.log.warn({ err: error }, 'could not hand the task back; the monitor will find it');
    }
  }

  lose(reason: string, code?: string) {
    if (this.lost) return;
    this.lost = reason;
    this.stopTimers();
    this.controller.abort(new TaskwardenClientError('LEASE_MISMATCH', reason));
    this.events.emit('task:lost', this.task, { reason, ...(code ? { code } : {}) });
  }

  private refusal = '';

  /**
   * The final write, with the lease, retried with backoff while the server is
   * unreachable (heartbeats keep going meanwhile, so the task does not look dead).
   */
  private async finish(what: 'complete' | 'fail', call: () => Promise<unknown>): Promise<'done' | 'lost' | 'refused' | 'gave up'> {
    const beat = setInterval(() => void this.client.reportProgress(this.task.id, this.leaseToken).catch(() => {}), this.beatEvery);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.writes;
          await call();
          this.finished = true;
          this.log.info(what === 'complete' ? 'task completed' : 'task failed');
          return 'done';
        } catch (error) {
          if (!(error instanceof TaskwardenClientError)) throw error;
          if (error.code === 'LEASE_MISMATCH') {
            this.log.warn({ reason: error.message }, `could not ${what} the task: the lease is gone; nothing was written`);
            this.lose(error.message, error.code);
            return 'lost';
          }
          if (!error.isNetworkError) {
            this.refusal = error.message;
            this.log.error({ err: error }, `the server refused to ${what} the task`);
            return 'refused';
          }
          if (attempt >= this.settings.finishRetries) {
            this.log.error({ err: error }, `gave up trying to ${what} the task; the monitor will find it`);
            return 'gave up';
          }
          const delay = Math.min(250 * 2 ** attempt, 15_000) * (0.75 + Math.random() * 0.5);
          this.log.warn({ err: error.message, attempt: attempt + 1, delay }, `could not reach the server to ${what} the task; retrying`);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    } finally {
      clearInterval(beat);
    }
  }

  private progress(percent: number, message?: string) {
    if (this.lost || this.finished) return;
    this.pending = { progress: percent, ...(message !== undefined ? { message } : {}) };
    this.schedule();
  }

  /** One progress write in flight per task; the next carries the latest values, no sooner than `progressInterval` after the last. */
  private schedule() {
    if (this.progressTimer || this.reporting || !this.pending) return;
    const wait = this.lastWrite + this.settings.progressInterval - Date.now();
    if (wait <= 0) this.flush();
    else this.progressTimer = setTimeout(() => this.flush(), wait);
  }

  private flush() {
    this.progressTimer = undefined;
    const report = this.pending;
    this.pending = undefined;
    if (!report) return;
    this.reporting = true;
    void this.write(report)
      .catch(() => {})
      .finally(() => {
        this.reporting = false;
        this.schedule();
      });
  }

  /** The next heartbeat goes out after `beatEvery` without any write: a progress report is a heartbeat too. */
  private armHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => void this.write({}).catch(() => {}), this.beatEvery);
  }

  /** A heartbeat ({}), or a progress report, sent with the process's other reports; a LEASE_MISMATCH aborts the handler. */
  private write(report: Report) {
    if (this.lost || this.finished) return Promise.resolve();
    this.lastWrite = Date.now();
    this.armHeartbeat();
    const next = this.reporter.report(this.task.id, this.leaseToken, report).catch((error: unknown) => {
      if (error instanceof TaskwardenClientError && (error.code === 'LEASE_MISMATCH' || error.code === 'NOT_FOUND')) this.lose(error.message, error.code);
      else if (error instanceof TaskwardenClientError && error.code === 'BAD_USER_INPUT') this.log.warn({ err: error.message }, 'progress report refused');
      else this.log.debug({ err: error }, 'heartbeat failed; will retry at the next one');
      throw error;
    });
    this.writes = next.catch(() => {});
    return next;
  }

  private stopTimers() {
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.progressTimer);
    this.heartbeatTimer = this.progressTimer = undefined;
    this.pending = undefined;
  }
}

function errorText(error: unknown): string {
  const text =
    error instanceof Error ? `${error.name}: ${error.message}${error.stack ? `\n${error.stack.split('\n').slice(1).join('\n')}` : ''}` : String(error);
  return text.length > 10_000 ? `${text.slice(0, 9_999)}…` : text || 'handler failed';
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
