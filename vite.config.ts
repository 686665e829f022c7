import { existsSync, readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { readSafetensors } from './src/io/safetensors.ts';
import { cardFromMetadata, DEMO_MODEL_PATH } from './src/models/demo-model.ts';
import { precachePlugin } from './tools/precache-plugin.ts';

/**
 * The shipped demo model's card, built into the page: the page then knows, without a request
 * that would fail where no model ships, whether there is one and what it is.
 */
function shippedCard(): string {
  const path = `public/${DEMO_MODEL_PATH}`;
  if (!existsSync(path)) return 'null';
  return JSON.stringify(cardFromMetadata(readSafetensors(new Uint8Array(readFileSync(path))).metadata));
}

// One config for the app (vite), the static build and the tests (vitest).
//
// Tests run in Node on Dawn (the `webgpu` package), on the driver test/helpers/adapter-setup.ts
// chooses and prints. Two projects, run one after the other:
// - `node`: two test files at a time, each in its own forked process. On the CPU drivers most
//   of a test's time is compiling pipelines, one core per pipeline, so one file at a time left
//   the second core idle.
// - `app` (test/app/): the built page in headless Chromium, one file at a time and after the
//   Node files, since these tests time the page's main thread (no long tasks while training)
//   and Chromium's own SwiftShader needs both cores.
const shared = {
  environment: 'node',
  globalSetup: ['test/helpers/adapter-setup.ts'],
  pool: 'forks' as const,
  testTimeout: 120_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  root: '.',
  publicDir: 'public',
  build: { outDir: 'dist', target: 'es2022' },
  worker: { format: 'es' },
  define: { __DEMO_MODEL_CARD__: shippedCard() },
  // The service worker of the static build (/sw.js and its precache list; builds only).
  plugins: [precachePlugin()],
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/app/**'],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'app',
          include: ['test/app/**/*.test.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
