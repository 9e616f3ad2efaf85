import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // WebGPU suites share one software adapter per worker; two workers match the two cores.
    maxWorkers: 2,
  },
});
