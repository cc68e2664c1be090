#!/usr/bin/env node
// `npx taskwarden ...`: from a clone, runs the TypeScript sources through tsx, with no build step. Where tsx
// is not installed (a deployment's `npm install --omit=dev`), runs the build in dist/ (`npm run build`).
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch {
  await import('../dist/cli/main.js');
}
if (register) {
  register();
  await import('../src/cli/main.ts');
}
