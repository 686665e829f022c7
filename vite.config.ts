import { defineConfig } from 'vitest/config';

// One config for the app (vite), the static build and the tests (vitest).
// Tests run in Node on Dawn (the `webgpu` package), on the driver test/helpers/adapter-setup.ts
// chooses and prints. Two test files at a time, each in its own forked process: on the CPU
// drivers most of a test's time is compiling pipelines, one core per pipeline, so one file at
// a time left the second core idle.
export default defineConfig({
  root: '.',
  publicDir: 'public',
  build: { outDir: 'dist', target: 'es2022' },
  worker: { format: 'es' },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/helpers/adapter-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
