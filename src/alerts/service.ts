import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { AlertSettings } from './settings.js';
import { TaskwardenError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../log.js';
import { TaskStatus, TaskEventType, type Db } from '../tasks/model.js';
import type { RecordedChange } from '../tasks/sql/record-change.js';
import { createAlertDelivery, post, type DeliveryOutcome } from './delivery.js';
import { recordAlerts, type RecordedAlert } from './outbox.js';
import { burstAlert, failedAlert, monitorFailingAlert, pendingAlert, type AlertDraft } from './rules.js';
import { alertStatusWhere, type AlertStatus } from './status.js';
import { accepts, webhooksFrom } from './webhooks.js';

export type AlertService = ReturnType<typeof createAlertService>;

/**
 * Alerts: recorded in the outbox inside the transaction of what caused them
 * (see outbox.ts), then delivered to the webhooks (see delivery.ts).
 */
export function createAlertService({
  prisma,
  clock,
  settings,
  log,
  onDelivery,
}: {
  prisma: PrismaClient;
  clock: Clock;
  settings: AlertSettings;
  log: Logger;
  onDelivery?: (outcome: DeliveryOutcome) => void;
}) {
  const webhooks = webhooksFrom(settings.webhooks);
  const delivery = createAlertDelivery({ prisma, settings, webhooks, log, onOutcome: onDelivery });
  /** Alerts about the database being unreachable, waiting to be written once it is back. */
  const unrecorded: AlertDraft[] = [];
  const instance = `${hostname()}:${process.pid}`;

  const record = (db: Db, drafts: AlertDraft[]) => recordAlerts(db, drafts, webhooks, clock.now());

  return {
    settings,
    webhooks,
    record,
    /** After the recording transaction committed: send the new alerts now. */
    committed(recorded: RecordedAlert[]) {
      if (recorded.length > 0) delivery.wake();
    },

    /** A task failed (by its worker or an operator): its alert, and a burst alert when failures of its kind pile up. */
    async taskFailed(db: Db, change: RecordedChange): Promise<RecordedAlert[]> {
      if (!change.event || change.row.status !== TaskStatus.FAILED) return [];
      const drafts = [failedAlert(change.row, change.event)];
      const now = clock.now();
      const failures = await db.taskEvent.count({
        where: { type: TaskEventType.FAILED, kind: change.row.kind, at: { gte: new Date(now.getTime() - settings.burstWindowMs) } },
      });
      if (failures >= settings.burstCount) drafts.push(burstAlert(change.row.kind, failures, settings.burstWindowMs, now));
      return record(db, drafts);
    },

    /** Tasks waiting in PENDING longer than `pendingAfterMs`, each alerted once (run by the sweep). */
    async pendingTooLong(db: Db): Promise<RecordedAlert[]> {
      if (!settings.pendingAfterMs) return [];
      const now = clock.now();
      const waiting = await db.task.findMany({
        where: { status: TaskStatus.PENDING, createdAt: { lt: new Date(now.getTime() - settings.pendingAfterMs) } },
        orderBy: { createdAt: 'asc' },
        take: 100,
      });
      return record(
        db,
        waiting.map((task) => pendingAlert(task, now.getTime() - task.createdAt.getTime(), now)),
      );
    },

    /**
     * The monitor failed `failures` sweeps in a row. The database is likely
     * what fails, so when the outbox cannot take the alert it is sent straight
     * away and written to the outbox once the database is back (receivers
     * dedupe the second delivery by its idempotency key).
     */
    async monitorFailing(failures: number, lastError: string, since: Date) {
      const draft = monitorFailingAlert(instance, failures, lastError, since, clock.now());
      try {
        this.committed(await record(prisma, [draft]));
      } catch {
        unrecorded.push(draft);
        await Promise.all(
          webhooks
            .filter((w) => accepts(w, draft))
            .map(async (w) => {
              const { error } = await post(w, draft.payload);
              if (error) log.error({ webhook: w.display, error }, 'could not send the monitor alert either');
            }),
        );
      }
    },

    /** Writes alerts that could not be written while the database was away (run after a sweep succeeds). */
    async flushUnrecorded() {
      while (unrecorded.length > 0) {
        this.committed(await record(prisma, [unrecorded[0]!]));
        unrecorded.shift();
      }
    },

    async list(filter: { status?: AlertStatus | null; first?: number }) {
      const where = filter.status ? alertStatusWhere(filter.status) : {};
      return prisma.alert.findMany({ where, include: { deliveries: true }, orderBy: { id: 'desc' }, take: filter.first ?? 50 });
    },

    /** Gives an alert's failed deliveries a fresh round of attempts. */
    async retry(id: bigint) {
      const alert = await prisma.alert.findUnique({ where: { id } });
      if (!alert) throw new TaskwardenError('NOT_FOUND', `Alert ${id} does not exist.`);
      await prisma.$executeRaw`
        UPDATE "AlertDelivery" SET status = 'PENDING', attempts = 0, "nextAttemptAt" = now(), "lockedUntil" = NULL
        WHERE "alertId" = ${id} AND status = 'FAILED'`;
      delivery.wake();
      return prisma.alert.findUniqueOrThrow({ where: { id }, include: { deliveries: true } });
    },

    /** Deliveries waiting to be sent (for the backlog gauge). */
    backlog: () => prisma.alertDelivery.count({ where: { status: 'PENDING' } }),

    start: () => delivery.start(),
    stop: () => delivery.stop(),
  };
}
