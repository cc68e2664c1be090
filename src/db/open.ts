import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { Config } from '../config.js';
import { TaskwardenError } from '../errors.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { pgliteAdapter } from './pglite-adapter.js';
import { releasingOnFailedCommit } from './commit-failures.js';
import { pgliteExtensions } from './pglite-extensions.js';
import { acquireDataDir, MEMORY, type DataDir } from './data-dir.js';
import { migrate, pendingMigrations, type SqlSession } from './migrate.js';

export type { PrismaClient };

/** Where the data lives: a PostgreSQL server, a PGlite folder, or PGlite in memory (tests). */
/** Runs one parameterized statement ($1, $2, ...) and returns its rows as the driver gives them. */
export type RawQuery = (text: string, values: unknown[]) => Promise<Record<string, unknown>[]>;

export type DatabaseTarget = { url: string; poolSize?: number } | { dataDir: string } | { memory: true };

/**
 * DATABASE_URL when set; otherwise the embedded database in DATA_DIR (or in memory for DATA_DIR=memory).
 * Here rather than in the server, so that tools (migrations, the CLI's repair path) need not load the API.
 */
export function databaseTarget(config: Pick<Config, 'databaseUrl' | 'dataDir'> & Partial<Pick<Config, 'databasePoolSize'>>): DatabaseTarget {
  if (config.databaseUrl) return { url: config.databaseUrl, poolSize: config.databasePoolSize };
  return config.dataDir === MEMORY ? { memory: true } : { dataDir: config.dataDir };
}

export interface Database {
  readonly prisma: PrismaClient;
  /**
   * The hot path's statement straight on the driver, past Prisma's per-statement cost (PostgreSQL
   * only: on PGlite, Prisma's adapter owns the one session and its transactions).
   */
  readonly query?: RawQuery;
  readonly provider: 'postgres' | 'pglite';
  /** Where the data lives, safe to log (no password). */
  readonly location: string;
  /** Migrations this open applied (empty when the database was up to date). */
  readonly applied: string[];
  /** True when the database answers and every migration is applied. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** Called with each SQL statement the Prisma client sends (Prisma's query event): for counting or tracing them. */
  onQuery?: (sql: string) => void;
}

/** Opens the database, applies pending migrations, and returns a Prisma client over it. */
export async function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): Promise<Database> {
  const shouldMigrate = options.migrate ?? true;
  if ('url' in target) return openPostgres(target.url, target.poolSize ?? 10, shouldMigrate, options.onQuery);
  return openPGlite(target, shouldMigrate, options.onQuery);
}

function prismaClient(adapter: ReturnType<typeof releasingOnFailedCommit> | ReturnType<typeof pgliteAdapter>, onQuery: OpenOptions['onQuery']): PrismaClient {
  if (!onQuery) return new PrismaClient({ adapter });
  const prisma = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  prisma.$on('query', (event) => onQuery(event.query));
  return prisma as unknown as PrismaClient;
}

async function openPostgres(url: string, poolSize: number, shouldMigrate: boolean, onQuery: OpenOptions['onQuery']): Promise<Database> {
  // Prisma's driver adapters send DateTime values without a zone, so the server
  // would read them in its own time zone; pinning the session to UTC keeps every
  // timestamp right whatever the server's (or the database's) TimeZone setting.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, options: '-c TimeZone=UTC' });
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const session = async <T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      return await fn(pgSession(client));
    } finally {
      client.release();
    }
  };
  let applied: string[] = [];
  try {
    if (shouldMigrate) applied = await session(migrate);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const prisma = prismaClient(releasingOnFailedCommit(new PrismaPg(pool)), onQuery);
  return {
    prisma,
    query: async (text, values) => (await pool.query(text, values)).rows,
    provider: 'postgres',
    location: redact(url),
    applied,
    ready: () => session(async (sql) => (await pendingMigrations(sql)).length === 0).catch(() => false),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPGlite(target: { dataDir: string } | { memory: true }, shouldMigrate: boolean, onQuery: OpenOptions['onQuery']): Promise<Database> {
  const dataDir: DataDir | undefined = 'dataDir' in target ? acquireDataDir(target.dataDir) : undefined;
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dataDir ? dataDir.pgdata : 'memory://', { extensions: pgliteExtensions });
  } catch (error) {
    dataDir?.release();
    throw new TaskwardenError(
      'DATA_DIR_DAMAGED',
      `The embedded database in ${dataDir?.pgdata ?? 'memory'} could not be opened (${(error as Error).message}). ` +
        `Restore it from a backup, or move the folder away to start with an empty database.`,
    );
  }
  const sql = pgliteSession(pglite);
  let applied: string[] = [];
  try {
    await pglite.exec(`SET TimeZone = 'UTC'`); // as for Postgres: timestamps arrive without a zone
    if (shouldMigrate) applied = await migrate(sql);
    dataDir?.markReady();
  } catch (error) {
    await pglite.close();
    dataDir?.release();
    throw error;
  }
  const prisma = prismaClient(pgliteAdapter(pglite), onQuery);
  return {
    prisma,
    provider: 'pglite',
    location: dataDir ? dataDir.pgdata : 'memory',
    applied,
    ready: async () => !pglite.closed && (await pendingMigrations(sql).catch(() => ['?'])).length === 0,
    async close() {
      await prisma.$disconnect();
      if (!pglite.closed) await pglite.close();
      dataDir?.release();
    },
  };
}

/** A migration session over PGlite. */
export function pgliteSession(pglite: PGlite): SqlSession {
  return {
    query: async (text, params) => (await pglite.query(text, params)).rows as never,
    exec: async (text) => void (await pglite.exec(text)),
  };
}

/** A migration session over one `pg` connection (a multi-statement script needs the simple protocol it uses without parameters). */
export function pgSession(client: pg.ClientBase): SqlSession {
  return {
    query: async (text, params) => (await client.query(text, params)).rows,
    exec: async (text) => void (await client.query(text)),
  };
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres';
  }
}
