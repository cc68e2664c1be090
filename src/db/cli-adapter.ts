import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { acquireDataDir } from './data-dir.js';

/**
 * PGlite's Prisma adapter. pglite-prisma-adapter 0.6 compiles against an older
 * @prisma/driver-adapter-utils whose types differ only in name from the one
 * Prisma 6.19 uses (0.7 needs Prisma 7), so the type is restated here.
 */
export const pgliteAdapter = (pglite: PGlite) => new PrismaPGlite(pglite) as unknown as SqlMigrationAwareDriverAdapterFactory;

/** The driver adapter the Prisma CLI uses (see prisma.config.ts). */
export function cliAdapter(url: string | undefined): SqlMigrationAwareDriverAdapterFactory {
  if (url && /^postgres(ql)?:\/\//.test(url)) return new PrismaPg({ connectionString: url, options: '-c TimeZone=UTC' });
  const dataDir = acquireDataDir(process.env.DATA_DIR ?? './data');
  process.once('exit', () => dataDir.release());
  return pgliteAdapter(new PGlite(dataDir.pgdata));
}
