import pino from 'pino';
import { createAlertService } from '../alerts/service.js';
import { systemClock } from '../clock.js';
import { createEventBus } from '../events.js';
import { actors } from '../tasks/model.js';
import { createTaskService } from '../tasks/service.js';
import { createCommit } from '../tasks/unit-of-work.js';
import { oneTimeout } from '../tasks/stuck.js';
import { taskView } from '../tasks/view.js';
import { openServerDatabase } from './direct-database.js';
import { stuckItem, type Repairer } from './repair.js';

/**
 * `fix-stuck` on the server's database when the server does not answer (see
 * direct-database.ts). Every write goes through the task service, so the
 * transition rules are the server's, and the history records actor "cli".
 */
export async function databaseRepairer(databaseUrl?: string): Promise<Repairer> {
  const { db, config } = await openServerDatabase(databaseUrl);
  const bus = createEventBus();
  // Stopping records no alert, but the service is built the one way: with its alert outbox.
  const alerts = createAlertService({ prisma: db.prisma, clock: systemClock, settings: config.alerts, log: pino({ level: 'silent' }) });
  const commit = createCommit({ prisma: db.prisma, bus, alerts });
  const tasks = createTaskService({ prisma: db.prisma, clock: systemClock, commit, bus, alerts, retryBackoff: config.scheduling.retryBackoff });
  return {
    via: 'database',
    target: db.location,
    async findStuck(timeoutMinutes) {
      const now = systemClock.now();
      return (await tasks.stuck(oneTimeout(timeoutMinutes * 60_000))).map(({ task, verdict }) => {
        const view = taskView(task, verdict, now);
        return stuckItem({
          ...task,
          ...view,
          startedAt: task.startedAt?.toISOString() ?? null,
          lastHeartbeatAt: task.lastHeartbeatAt?.toISOString() ?? null,
          stuckSince: view.stuckSince?.toISOString() ?? null,
        });
      });
    },
    stop: async (id, reason) => (await tasks.stop(id, { reason, actor: actors.cli })).status,
    delete: (id) => tasks.delete(id, { actor: actors.cli }),
    async close() {
      await bus.close();
      await db.close();
    },
  };
}
