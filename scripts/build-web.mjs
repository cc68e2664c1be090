#!/usr/bin/env node
// Builds the dashboard into web/dist, unless it was already built from the same sources: `npm start`
// runs this first, so a warm start costs a directory walk instead of a Vite build. Plain JavaScript, so
// that it starts without a TypeScript loader. `--force` builds regardless.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'web/dist');
const stamp = join(dist, '.sources');
// What the build reads: the page's own sources, the SDK client and typed operations it imports, the locked dependencies.
const inputs = ['web', 'src/client', 'src/generated/graphql', 'package-lock.json']; // web/ holds its own generated operations

function* files(path) {
  if (path === dist) return;
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory()) {
    yield `${relative(root, path)} ${stat.size} ${stat.mtimeMs}`;
    return;
  }
  for (const entry of readdirSync(path).sort()) yield* files(join(path, entry));
}

const fingerprint = createHash('sha256')
  .update([...inputs.flatMap((input) => [...files(join(root, input))])].join('\n'))
  .digest('hex');
if (!process.argv.includes('--force') && existsSync(join(dist, 'index.html')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === fingerprint) {
  console.log('The dashboard in web/dist is up to date.');
  process.exit(0);
}
const vite = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', 'web', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
if (vite.status !== 0) process.exit(vite.status ?? 1);
writeFileSync(stamp, fingerprint);
console.log('Built the dashboard into web/dist.');
