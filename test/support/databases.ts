import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { beforeEach, describe } from 'vitest';
import { openDatabase, type Database, type DatabaseTarget, type OpenOptions } from '../../src/db/open.js';
import { beforeAllValue } from './fixture.js';

/** Which databases the suites run on: PGlite always, PostgreSQL when TEST_DATABASE_URL is set. */
export const databaseKinds = (process.env.TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite']) as ('pglite' | 'postgres')[];

/**
 * `describe.each(databaseKinds)`, except that the PostgreSQL variant is always
 * registered: without TEST_DATABASE_URL it shows as skipped rather than
 * vanishing, so a run that missed it says so (and CI refuses it).
 */
export function describeEachDatabase(name: string, body: (kind: 'pglite' | 'postgres') => void) {
  describe(name.replace('%s', 'pglite'), () => body('pglite'));
  describe.skipIf(!process.env.TEST_DATABASE_URL)(name.replace('%s', 'postgres'), () => body('postgres'));
}

export interface TestDatabase {
  kind: 'pglite' | 'postgres';
  db: Database;
  target: DatabaseTarget;
  /** Empties every table between tests. */
  reset(): Promise<void>;
  /** A second, independent connection (Postgres only): for holding locks the way another instance would. */
  connect?(): Promise<pg.Client>;
  close(): Promise<void>;
}

/**
 * A fresh database for one test file: PGlite in memory, or a new PostgreSQL
 * database that is dropped afterwards. Postgres test databases run in
 * Asia/Shanghai time, so any timestamp written in the server's zone instead
 * of UTC shows up as a failure.
 */
export async function openTestDatabase(kind: 'pglite' | 'postgres', options: Pick<OpenOptions, 'onQuery'> = {}): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const target: DatabaseTarget = { memory: true };
    const db = await openDatabase(target, options);
    return { kind, db, target, reset: () => truncate(db), close: () => db.close() };
  }
  const base = process.env.TEST_DATABASE_URL!;
  const name = `taskwarden_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.query(`ALTER DATABASE ${name} SET timezone TO 'Asia/Shanghai'`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const target: DatabaseTarget = { url: url.toString() };
  const db = await openDatabase(target, options);
  const clients: pg.Client[] = [];
  return {
    kind,
    db,
    target,
    reset: () => truncate(db),
    async connect() {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await db.close();
      const cleanup = new pg.Client({ connectionString: base });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/**
 * The describe's own database of `kind`: opened before its first test, closed after its last,
 * and emptied before each test unless `reset: false` (tests that build on each other's rows).
 */
export function useTestDatabase(
  kind: 'pglite' | 'postgres',
  { reset = true, timeout, ...options }: { reset?: boolean; timeout?: number } & Pick<OpenOptions, 'onQuery'> = {},
): TestDatabase {
  const database = beforeAllValue(`the ${kind} test database`, () => openTestDatabase(kind, options), { dispose: (opened) => opened.close(), timeout });
  if (reset) beforeEach(() => database.reset());
  return database;
}

async function truncate(db: Database) {
  await db.prisma.$executeRawUnsafe(
    'TRUNCATE "Task", "TaskDependency", "KindQueue", "TaskCount", "TaskEvent", "MonitorSweep", "Alert", "AlertDelivery", "ApiToken" RESTART IDENTITY',
  );
}
