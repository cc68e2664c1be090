// Configuration for the Prisma CLI (generate, migrate diff/status). It runs
// Prisma's JavaScript engine through a driver adapter, so no native engine
// binary is ever downloaded: installs work offline and in air-gapped networks.
import 'dotenv/config';
import { defineConfig } from 'prisma/config';

// schema.prisma names env("DATABASE_URL") so the CLI stays on the JS engine;
// without a value the CLI falls back to downloading the native one. The value
// is never used to connect (the adapter below does that).
const databaseUrl = process.env.DATABASE_URL || undefined;
process.env.DATABASE_URL = databaseUrl ?? 'postgresql://unused@localhost/unused';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  experimental: { adapter: true },
  engine: 'js',
  // The same choice the server makes: DATABASE_URL for a PostgreSQL server,
  // otherwise the embedded database in DATA_DIR (locked while the CLI uses it).
  async adapter() {
    const { cliAdapter } = await import('./src/db/pglite-adapter.js');
    return cliAdapter(databaseUrl);
  },
});
