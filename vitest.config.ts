import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for yoga and Pothos; without this,
    // Vite would hand our own modules the ESM build, and `instanceof GraphQLError`
    // would fail across the two copies (the dual-package hazard).
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file opens its own databases; PGlite is CPU-bound, so keep to the cores there are.
    pool: 'forks',
    maxWorkers: 2,
    // A committed `.only` would quietly run one test in place of the suite: CI refuses it.
    allowOnly: !process.env.CI,
  },
});
