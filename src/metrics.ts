import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryOutcome } from './alerts/delivery.js';
import type { RestCall } from './rest/api.js';
import type { SweepReport } from './monitor/sweep.js';
import type { Services } from './services.js';
import { TaskEventType, TaskStatus } from './tasks/model.js';
import type { RecordedChange } from './tasks/sql/record-change.js';
import { readCounts } from './tasks/sql/counts.js';
import type { PruneCounts } from './monitor/retention.js';
import type { KindQueueFigures } from './tasks/queues.js';
import { detectionDelayMs } from './tasks/stuck.js';

const fixedActors = new Set(['monitor', 'operator', 'api', 'cli']);
const workerWrites = new Set<string>([TaskEventType.STARTED, TaskEventType.PROGRESS, TaskEventType.COMPLETED, TaskEventType.FAILED, TaskEventType.REQUEUED]);

/** Actor names are unbounded (worker ids, token names); metrics get their category. */
export function actorCategory(actor: string, type: string): string {
  if (fixedActors.has(actor)) return actor;
  return workerWrites.has(type) ? 'worker' : 'token';
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Prometheus metrics, on a registry of this server's own (served at /metrics
 * with yoga's Prometheus plugin, which adds GraphQL operation timings and errors).
 * Counters count what this instance did; gauges read the shared database.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const transitions = new Counter({
    name: 'taskwarden_task_transitions_total',
    help: 'Task history entries written by this instance, by type, task kind and actor category (monitor, operator, api, cli, worker, token).',
    labelNames: ['type', 'kind', 'actor'] as const,
    registers: [registry],
  });
  const stuck = new Counter({
    name: 'taskwarden_stuck_detections_total',
    help: 'Stuck tasks handled, by reason and action taken.',
    labelNames: ['reason', 'action'] as const,
    registers: [registry],
  });
  const detectionDelay = new Histogram({
    name: 'taskwarden_stuck_detection_delay_seconds',
    help: 'How late the monitor found a stuck task: detection time minus (last sign of life + its timeout), by reason.',
    labelNames: ['reason'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 900, 1800],
    registers: [registry],
  });
  const sweepDuration = new Histogram({
    name: 'taskwarden_sweep_duration_seconds',
    help: 'Duration of monitor sweeps that ran.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const sweepScanned = new Histogram({
    name: 'taskwarden_sweep_scanned_tasks',
    help: 'Running tasks examined per sweep.',
    buckets: [0, 1, 10, 50, 100, 500, 1000, 5000, 10000, 50000],
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'taskwarden_alert_deliveries_total',
    help: 'Alert delivery attempts, by outcome (delivered, retry, failed).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of ['delivered', 'retry', 'failed']) deliveries.inc({ outcome }, 0);
  const restCalls = new Counter({
    name: 'taskwarden_rest_requests_total',
    help: 'REST calls (/api/v1) by method, route template (never the raw URL; "unmatched" for no route) and HTTP status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const restDuration = new Histogram({
    name: 'taskwarden_rest_request_duration_seconds',
    help: 'Time to answer a REST call, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const pruned = new Counter({
    name: 'taskwarden_pruned_rows_total',
    help: 'Rows deleted by retention on this instance (TASK_RETENTION, HISTORY_RETENTION), by table: task, task_event.',
    labelNames: ['table'] as const,
    registers: [registry],
  });
  for (const table of ['task', 'task_event']) pruned.inc({ table }, 0);

  return {
    registry,
    /** Hooks for the services (see services.ts Observers). */
    observers: {
      change(change: RecordedChange) {
        if (change.event) transitions.inc({ type: change.event.type, kind: change.event.kind, actor: actorCategory(change.event.actor, change.event.type) });
      },
      sweep(report: SweepReport) {
        if (!report.ran) return;
        sweepDuration.observe((report.finishedAt.getTime() - report.startedAt.getTime()) / 1000);
        sweepScanned.observe(report.scanned);
        for (const h of report.handled) stuck.inc({ reason: h.verdict.reason, action: h.outcome });
        // An operator's cleanup with their own timeout says nothing about how late the monitor is.
        if (report.trigger !== 'cleanup') {
          for (const h of report.handled) detectionDelay.observe({ reason: h.verdict.reason }, detectionDelayMs(h.verdict) / 1000);
        }
      },
      delivery(outcome: DeliveryOutcome) {
        deliveries.inc({ outcome });
      },
      prune(counts: PruneCounts) {
        pruned.inc({ table: 'task' }, counts.tasks);
        pruned.inc({ table: 'task_event' }, counts.events);
      },
      restCall({ method, route, status, seconds }: RestCall) {
        restCalls.inc({ method, route, status: String(status) });
        restDuration.observe({ method, route }, seconds);
      },
    },
    /** Gauges read at scrape time, once the services exist. */
    watch(services: Services, connections: () => number) {
      // One read of the queues per scrape feeds all four queue gauges.
      let queues: { at: number; figures: Promise<KindQueueFigures[]> } | undefined;
      const figures = () => {
        if (!queues || Date.now() - queues.at > 1000) queues = { at: Date.now(), figures: services.queues.list().catch(() => []) };
        return queues.figures;
      };
      new Gauge({
        name: 'taskwarden_queue_tasks',
        help: 'Tasks of each kind by queue state: pending (ready), delayed (runAt ahead), blocked (a dependency not completed), running.',
        labelNames: ['kind', 'state'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const q of await figures()) {
            for (const state of ['pending', 'delayed', 'blocked', 'running'] as const) this.set({ kind: q.kind, state }, q[state]);
          }
        },
      });
      new Gauge({
        name: 'taskwarden_queue_limit',
        help: 'Per-kind concurrency limit (only kinds that have one).',
        labelNames: ['kind'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const q of await figures()) if (q.maxRunning !== null) this.set({ kind: q.kind }, q.maxRunning);
        },
      });
      new Gauge({
        name: 'taskwarden_queue_paused',
        help: '1 while a kind is paused, else 0.',
        labelNames: ['kind'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const q of await figures()) this.set({ kind: q.kind }, q.paused ? 1 : 0);
        },
      });
      new Gauge({
        name: 'taskwarden_queue_oldest_ready_age_seconds',
        help: 'How long the longest-waiting ready task of each kind has been due.',
        labelNames: ['kind'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const q of await figures()) this.set({ kind: q.kind }, q.oldestReadyAgeSeconds);
        },
      });
      new Gauge({
        name: 'taskwarden_tasks',
        help: 'Tasks by status.',
        labelNames: ['status'] as const,
        registers: [registry],
        async collect() {
          // From the counters: a scrape costs the same at a million tasks as at ten.
          const counts = await readCounts(services.prisma).catch(() => []);
          for (const status of Object.values(TaskStatus))
            this.set(
              { status },
              counts.filter((c) => c.status === status).reduce((sum, c) => sum + c.n, 0),
            );
        },
      });
      new Gauge({
        name: 'taskwarden_alert_outbox_backlog',
        help: 'Alert deliveries waiting to be sent.',
        registers: [registry],
        async collect() {
          this.set(await services.alerts.backlog().catch(() => 0));
        },
      });
      new Gauge({
        name: 'taskwarden_open_subscriptions',
        help: 'GraphQL subscriptions open on this instance.',
        registers: [registry],
        collect() {
          this.set(services.bus.openSubscriptions);
        },
      });
      new Gauge({
        name: 'taskwarden_live_connections',
        help: 'WebSocket connections and SSE streams open on this instance.',
        registers: [registry],
        collect() {
          this.set(connections());
        },
      });
    },
  };
}

/**
 * /metrics on a port of its own (METRICS_PORT), without a token: for a
 * scraper on a private network, while the API port (which then has no
 * /metrics) faces the users. Resolves once listening.
 */
export async function serveMetrics(registry: Registry, port: number, host: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?', 1)[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Only GET /metrics here.\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
