import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { releasingOnFailedCommit, reportingFailedCommits } from './commit-failures.js';
import { pgliteExtensions } from './pglite-extensions.js';
import { acquireDataDir, MEMORY } from './data-dir.js';

/**
 * PGlite's Prisma adapter. pglite-prisma-adapter 0.6 compiles against an older
 * @prisma/driver-adapter-utils whose types differ only in name from the one
 * Prisma 6.19 uses (0.7 needs Prisma 7), so the type is restated here.
 */
export const pgliteAdapter = (pglite: PGlite) => reportingFailedCommits(new PrismaPGlite(pglite) as unknown as SqlMigrationAwareDriverAdapterFactory);

/**
 * The driver adapter the Prisma CLI uses (see prisma.config.ts): the same
 * database the server would use. The embedded one is opened, and its data
 * directory locked, only when a command actually connects, and only once, so
 * commands such as `migrate diff --from-empty` never touch it.
 */
export function cliAdapter(url: string | undefined): SqlMigrationAwareDriverAdapterFactory {
  if (url && /^postgres(ql)?:\/\//.test(url)) return releasingOnFailedCommit(new PrismaPg({ connectionString: url, options: '-c TimeZone=UTC' }));
  let opened: { pglite: PGlite; adapter: SqlMigrationAwareDriverAdapterFactory } | undefined;
  const open = () => {
    if (!opened) {
      const dir = process.env.DATA_DIR || './data';
      let location = 'memory://';
      if (dir !== MEMORY) {
        const dataDir = acquireDataDir(dir);
        process.once('exit', () => dataDir.release());
        location = dataDir.pgdata;
      }
      const pglite = new PGlite(location, { extensions: pgliteExtensions });
      opened = { pglite, adapter: pgliteAdapter(pglite) };
    }
    return opened;
  };
  // The adapter's own dispose() leaves PGlite open, which keeps the CLI from exiting.
  const closing = <T extends { dispose(): Promise<void> }>(adapter: T, pglite: PGlite): T =>
    Object.assign(adapter, { dispose: async () => void (pglite.closed || (await pglite.close())) });
  return {
    provider: 'postgres',
    adapterName: 'pglite-prisma-adapter',
    connect: async () => closing(await open().adapter.connect(), open().pglite),
    connectToShadowDb: () => open().adapter.connectToShadowDb(),
  };
}
