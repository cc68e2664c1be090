import { systemClock } from '../clock.js';
import { actors } from '../tasks/model.js';
import { oneTimeout } from '../tasks/stuck.js';
import { taskView } from '../tasks/view.js';
import { openServerServices } from './direct-database.js';
import { stuckItem, type Repairer } from './repair.js';

/**
 * `fix-stuck` on the server's database when the server does not answer (see
 * direct-database.ts). Every write goes through the task service, so the
 * transition rules are the server's, and the history records actor "cli".
 */
export async function databaseRepairer(databaseUrl?: string): Promise<Repairer> {
  const { services, location, close } = await openServerServices(databaseUrl);
  const { tasks } = services;
  return {
    via: 'database',
    target: location,
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
    close,
  };
}
