import { defineConfig } from 'vitest/config';

// One config for the app (vite), the static build and the tests (vitest).
// Tests run in Node on Dawn (the `webgpu` package); GPU tests share the two cores, so they
// run in one forked process at a time to keep SwiftShader from thrashing.
export default defineConfig({
  root: '.',
  publicDir: 'public',
  build: { outDir: 'dist', target: 'es2022' },
  worker: { format: 'es' },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
