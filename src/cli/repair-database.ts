import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'dotenv';
import pino from 'pino';
import { createAlertService } from '../alerts/service.js';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config.js';
import { holdsDatabase } from '../db/data-dir.js';
import { databaseTarget, openDatabase } from '../db/open.js';
import { TaskwardenError } from '../errors.js';
import { createEventBus } from '../events.js';
import { actors } from '../tasks/model.js';
import { createTaskService } from '../tasks/service.js';
import { CliError, ExitCode } from './errors.js';
import { stuckItem, type Repairer } from './repair.js';

/**
 * Opens the server's database for `fix-stuck` when the server does not answer:
 * `--database-url`, else DATABASE_URL / DATA_DIR from the environment or .env,
 * as the server reads them. Every write goes through the task service, so the
 * transition rules are the server's, and the history records actor "cli".
 * A PGlite folder that a running server holds is refused (DATA_DIR_LOCKED).
 */
export async function databaseRepairer(databaseUrl?: string): Promise<Repairer> {
  const config = loadConfig({ ...dotenvFile(), ...process.env, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) });
  const target = databaseTarget(config);
  if ('memory' in target) {
    throw new CliError('NO_DATABASE', 'DATA_DIR=memory: the server keeps its database in memory, so there is nothing to repair directly.', ExitCode.unreachable);
  }
  if ('dataDir' in target && !holdsDatabase(target.dataDir)) {
    throw new CliError(
      'NO_DATABASE',
      `There is no Taskwarden database in ${resolve(target.dataDir)} to repair directly (set DATA_DIR, or pass --database-url).`,
      ExitCode.unreachable,
    );
  }
  let db;
  try {
    db = await openDatabase(target, { migrate: false });
  } catch (error) {
    if (error instanceof TaskwardenError && error.code === 'DATA_DIR_LOCKED') {
      throw new CliError(error.code, `Not touching the database directly: ${error.message}`);
    }
    throw error;
  }
  try {
    await db.prisma.$queryRaw`SELECT 1`;
  } catch (error) {
    await db.close();
    throw new CliError('DATABASE_UNREACHABLE', `The database at ${db.location} does not answer either: ${(error as Error).message.split('\n')[0]}`, ExitCode.unreachable);
  }
  if (!(await db.ready())) {
    await db.close();
    throw new CliError('MIGRATIONS_PENDING', `The database at ${db.location} is not migrated to this version of Taskwarden: run npm run db:migrate first.`);
  }

  const bus = createEventBus();
  // Stopping records no alert, but the service is built the one way: with its alert outbox.
  const alerts = createAlertService({ prisma: db.prisma, clock: systemClock, settings: config.alerts, log: pino({ level: 'silent' }) });
  const tasks = createTaskService({ prisma: db.prisma, clock: systemClock, bus, alerts });
  return {
    via: 'database',
    target: db.location,
    async findStuck(timeoutMinutes) {
      const now = systemClock.now().getTime();
      return (await tasks.stuck(timeoutMinutes * 60_000)).map(({ task, verdict }) =>
        stuckItem({
          ...task,
          startedAt: task.startedAt?.toISOString() ?? null,
          lastHeartbeatAt: task.lastHeartbeatAt?.toISOString() ?? null,
          durationSeconds: task.startedAt ? (now - task.startedAt.getTime()) / 1000 : null,
          stuckReason: verdict.reason,
          stuckSince: verdict.since.toISOString(),
          stuckForSeconds: verdict.stuckForMs / 1000,
        }),
      );
    },
    stop: async (id, reason) => (await tasks.stop(id, { reason, actor: actors.cli })).status,
    delete: (id) => tasks.delete(id, { actor: actors.cli }),
    async close() {
      await bus.close();
      await db.close();
    },
  };
}

/** The server reads .env through dotenv; so does this path, without changing process.env. */
function dotenvFile(): Record<string, string> {
  const file = resolve('.env');
  return existsSync(file) ? parse(readFileSync(file)) : {};
}
