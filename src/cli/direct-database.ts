import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'dotenv';
import pino from 'pino';
import { systemClock } from '../clock.js';
import { loadConfig, type Config } from '../config.js';
import { holdsDatabase } from '../db/data-dir.js';
import { databaseTarget, openDatabase, type Database } from '../db/open.js';
import { TaskwardenError } from '../errors.js';
import { createEventBus } from '../events.js';
import { configuredServices } from '../services.js';
import { CliError, ExitCode } from './errors.js';

/**
 * The server's own database, for commands that must work while the server is
 * down (`fix-stuck`) or before it can start (`token create` for a server that
 * refuses to listen beyond loopback without one): `--database-url`, else
 * DATABASE_URL / DATA_DIR from the environment or .env, as the server reads them.
 * A PGlite folder a running server holds is refused (DATA_DIR_LOCKED).
 * `bootstrap` creates and migrates a database that is not there yet (the
 * first token of a new deployment); otherwise only an existing, migrated one is opened.
 */
export async function openServerDatabase(databaseUrl: string | undefined, { bootstrap = false } = {}): Promise<{ db: Database; config: Config }> {
  const config = loadConfig({ ...dotenvFile(), ...process.env, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) });
  const target = databaseTarget(config);
  if ('memory' in target) {
    throw new CliError('NO_DATABASE', 'DATA_DIR=memory: the server keeps its database in memory, so there is nothing to open directly.', ExitCode.unreachable);
  }
  if (!bootstrap && 'dataDir' in target && !holdsDatabase(target.dataDir)) {
    throw new CliError(
      'NO_DATABASE',
      `There is no Taskwarden database in ${resolve(target.dataDir)} to open directly (set DATA_DIR, or pass --database-url).`,
      ExitCode.unreachable,
    );
  }
  let db: Database;
  try {
    db = await openDatabase(target, { migrate: bootstrap });
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
    throw new CliError(
      'DATABASE_UNREACHABLE',
      `The database at ${db.location} does not answer either: ${(error as Error).message.split('\n')[0]}`,
      ExitCode.unreachable,
    );
  }
  if (!(await db.ready())) {
    await db.close();
    throw new CliError('MIGRATIONS_PENDING', `The database at ${db.location} is not migrated to this version of Taskwarden: run npm run db:migrate first.`);
  }
  return { db, config };
}

/**
 * The server's services over its database (openServerDatabase), built the server's one way
 * (configuredServices) and never started: a one-shot command runs no monitor, feed or alert delivery.
 */
export async function openServerServices(databaseUrl: string | undefined, options: { bootstrap?: boolean } = {}) {
  const { db, config } = await openServerDatabase(databaseUrl, options);
  const bus = createEventBus();
  const services = configuredServices(config, { db, bus, clock: systemClock, log: pino({ level: 'silent' }) });
  return {
    services,
    /** Where the database is, to tell the user. */
    location: db.location,
    async close() {
      await bus.close();
      await db.close();
    },
  };
}

/** The server reads .env through dotenv; so do these paths, without changing process.env. */
function dotenvFile(): Record<string, string> {
  const file = resolve('.env');
  return existsSync(file) ? parse(readFileSync(file)) : {};
}
