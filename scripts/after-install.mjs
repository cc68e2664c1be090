#!/usr/bin/env node
// What `npm install` runs after installing: `generate` (the Prisma client and the typed GraphQL documents,
// git-ignored under src/generated and web/src/generated) and `sdk` (compiles taskwarden/worker and taskwarden/client to dist/).
// A production install (`npm install --omit=dev`) runs what `npm run build` left in dist/ and has no GraphQL
// Code Generator, so both steps are skipped there with a line saying so. (Prisma's CLI and TypeScript are
// installed there anyway, as peers of @prisma/client, so their presence says nothing.)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const steps = {
  generate: [
    ['prisma', ['generate']],
    ['graphql-codegen', ['--silent']],
  ],
  sdk: [['tsc', ['-p', 'tsconfig.build.json']]],
};
if (!existsSync(join(root, 'node_modules/@graphql-codegen/cli'))) {
  console.log(`taskwarden: skipping the ${process.argv[2]} step: dev dependencies are not installed (production runs the build in dist/).`);
  process.exit(0);
}
for (const [tool, args] of steps[process.argv[2]] ?? []) {
  const run = spawnSync(join(root, 'node_modules/.bin', tool), args, { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
