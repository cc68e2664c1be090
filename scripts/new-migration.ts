// `npm run db:migration -- <name>`: writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL
// that takes the committed prisma/schema.prisma (git HEAD) to the one in the working tree. The committed
// schema and the migrations agree (a test checks it), so no database or shadow database is needed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:migration -- <name_in_snake_case>');
  process.exit(2);
}
const committed = join(mkdtempSync(join(tmpdir(), 'taskwarden-schema-')), 'schema.prisma');
writeFileSync(committed, execFileSync('git', ['show', 'HEAD:prisma/schema.prisma']));
const sql = execFileSync(
  process.execPath,
  ['node_modules/prisma/build/index.js', 'migrate', 'diff', '--from-schema-datamodel', committed, '--to-schema-datamodel', 'prisma/schema.prisma', '--script'],
  { env: { ...process.env, DATA_DIR: 'memory', DATABASE_URL: '', CHECKPOINT_DISABLE: '1' }, encoding: 'utf8' },
);
if (!/CREATE|ALTER|DROP/.test(sql)) {
  console.log('prisma/schema.prisma has no changes since the last commit: no migration written.');
  process.exit(0);
}
const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
const dir = join('prisma', 'migrations', `${stamp}_${name}`);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'migration.sql'), sql);
console.log(`wrote ${dir}/migration.sql; review it, then run the tests`);
