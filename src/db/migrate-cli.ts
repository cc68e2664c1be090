// `npm run db:migrate`: applies pending migrations to the configured database
// (DATABASE_URL, or the embedded one in DATA_DIR) and exits. The server does
// the same at start; this is for deployments that migrate as a separate step.
import 'dotenv/config';
import { loadConfig } from '../config.js';
import { databaseTarget, openDatabase } from './open.js';
import { readMigrations } from './migrate.js';

try {
  const config = loadConfig();
  const db = await openDatabase(databaseTarget(config));
  const applied = db.applied.length ? `applied ${db.applied.join(', ')}` : 'nothing to apply';
  console.log(`${db.provider} ${db.location}: ${applied}; ${readMigrations().length} migration(s) in all, up to date.`);
  await db.close();
} catch (error) {
  console.error(`taskwarden: ${(error as Error).message}`);
  process.exit(1);
}
