import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDataDir } from '../src/db/data-dir.js';
import { PGlite } from '@electric-sql/pglite';
import { pgliteExtensions } from '../src/db/pglite-extensions.js';
import { migrate, readMigrations, type SqlSession } from '../src/db/migrate.js';
import { openDatabase, pgliteSession, pgSession } from '../src/db/open.js';
import { describeEachDatabase, openTestDatabase } from './support/databases.js';

const run = promisify(execFile);
const dirs: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskwarden-db-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('the embedded data directory', () => {
  it('is locked while open, so a second opener fails fast instead of corrupting it', async () => {
    const dir = temp();
    const db = await openDatabase({ dataDir: dir });
    await expect(openDatabase({ dataDir: dir })).rejects.toMatchObject({
      code: 'DATA_DIR_LOCKED',
      message: expect.stringContaining(`in use by process ${process.pid}`),
    });
    await db.close();
    const again = await openDatabase({ dataDir: dir });
    await again.close();
  });

  it('takes over the lock of a process that died', async () => {
    const dir = temp();
    const { stdout } = await run(process.execPath, ['-e', 'console.log(process.pid)']);
    writeFileSync(join(dir, 'taskwarden.lock'), JSON.stringify({ pid: Number(stdout.trim()), host: (await import('node:os')).hostname(), since: 'earlier' }));
    const db = await openDatabase({ dataDir: dir });
    expect(JSON.parse(readFileSync(join(dir, 'taskwarden.lock'), 'utf8')).pid).toBe(process.pid);
    await db.close();
    expect(existsSync(join(dir, 'taskwarden.lock'))).toBe(false);
  });

  it('starts over when a first start was cut short, and refuses a damaged database that held data', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'pg', 'base'), { recursive: true });
    writeFileSync(join(dir, 'pg', 'half-written'), 'initdb was killed here');
    const db = await openDatabase({ dataDir: dir });
    await db.prisma.task.create({ data: { name: 'kept' } });
    await db.close();
    expect(existsSync(join(dir, 'ready'))).toBe(true);

    rmSync(join(dir, 'pg', 'global', 'pg_control'));
    await expect(openDatabase({ dataDir: dir })).rejects.toMatchObject({ code: 'DATA_DIR_DAMAGED' });
    // The refusal released the lock, and touched nothing else.
    expect(existsSync(join(dir, 'taskwarden.lock'))).toBe(false);
    expect(existsSync(join(dir, 'pg', 'PG_VERSION'))).toBe(true);
  });

  it('reports a directory it cannot lock', () => {
    const dir = temp();
    const first = acquireDataDir(dir);
    expect(() => acquireDataDir(dir)).toThrow(/in use by process/);
    first.release();
  });
});

/** The SQL that builds prisma/schema.prisma from nothing, as the Prisma CLI writes it (once per run: the CLI is slow to start). */
let schemaSql: Promise<string> | undefined;
const sqlForSchema = () =>
  (schemaSql ??= run(
    process.execPath,
    ['node_modules/prisma/build/index.js', 'migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'prisma/schema.prisma', '--script'],
    { env: { ...process.env, DATA_DIR: 'memory', DATABASE_URL: '', CHECKPOINT_DISABLE: '1' }, timeout: 120_000 },
  ).then((r) => r.stdout));

describeEachDatabase('migrations [%s]', (kind) => {
  it('are applied once, recorded as Prisma records them, and refused when edited after the fact', async () => {
    const database = await openTestDatabase(kind);
    const rows = await database.db.prisma.$queryRawUnsafe<{ migration_name: string; checksum: string }[]>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows).toEqual(readMigrations().map((m) => ({ migration_name: m.name, checksum: m.checksum })));
    expect(await database.db.ready()).toBe(true);
    await database.close();

    const { session, close } = await freshSession(kind);
    expect(await migrate(session)).toEqual(readMigrations().map((m) => m.name));
    expect(await migrate(session)).toEqual([]); // nothing left to apply
    const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(session, edited)).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('was changed after it was applied'),
    });
    await close();
  });

  it("leave room on the Task table's pages, so a progress report can update its row without touching the indexes (HOT)", async () => {
    const { session, close } = await freshSession(kind);
    await migrate(session);
    const [row] = await session.query<{ reloptions: string[] | null }>(`SELECT reloptions FROM pg_class WHERE relname = 'Task'`);
    expect(row?.reloptions).toContain('fillfactor=90');
    await close();
  });

  it('build exactly the database prisma/schema.prisma describes (no drift)', { timeout: 120_000 }, async () => {
    // Prisma's own drift check needs a schema engine feature that driver adapters lack, so compare catalogs:
    // the migrations applied to one empty database, and the schema's from-scratch SQL applied to another.
    const fromMigrations = await freshSession(kind);
    await migrate(fromMigrations.session);
    const fromSchema = await freshSession(kind);
    await fromSchema.session.exec(await sqlForSchema());
    expect(await catalog(fromMigrations.session), 'schema.prisma and prisma/migrations disagree: add a migration').toEqual(await catalog(fromSchema.session));
    await fromMigrations.close();
    await fromSchema.close();
  });
});

/** An empty database of the kind, as a migration session. */
async function freshSession(kind: 'pglite' | 'postgres'): Promise<{ session: SqlSession; close(): Promise<void> }> {
  if (kind === 'pglite') {
    const pglite = await PGlite.create({ extensions: pgliteExtensions });
    return { session: pgliteSession(pglite), close: () => pglite.close() };
  }
  const database = await openTestDatabase('postgres');
  const client = await database.connect!();
  await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  return { session: pgSession(client), close: () => database.close() };
}

/** Tables, columns, indexes, constraints and enums of the public schema, in a comparable form. */
async function catalog(session: SqlSession) {
  return {
    columns: await session.query(`
      SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, datetime_precision
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
      ORDER BY table_name, column_name`),
    indexes: await session.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY indexname`,
    ),
    constraints: await session.query(`
      SELECT conname, pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' AND conname NOT LIKE '_prisma%' ORDER BY conname`),
    enums: await session.query(`
      SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text AS labels FROM pg_type t
      JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname ORDER BY t.typname`),
  };
}
