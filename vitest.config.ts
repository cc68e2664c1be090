import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file opens its own databases; PGlite is CPU-bound, so keep to the cores there are.
    pool: 'forks',
    maxWorkers: 2,
  },
});
