import { defineConfig } from 'vitest/config';

// One config for the app (vite), the static build and the tests (vitest).
// Tests run in Node on Dawn (the `webgpu` package), on the driver test/helpers/adapter-setup.ts
// chooses and prints; GPU tests share the two cores, so they run in one forked process at a
// time to keep the CPU drivers from thrashing.
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
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
