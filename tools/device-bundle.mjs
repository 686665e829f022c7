// Packs `webspark bench` for a GPU machine that has no node_modules: one ESM bundle of the
// CLI plus the Linux build of Dawn (the `webgpu` package), in .devbench/ (git-ignored).
// With ../shared/gpu/prepare.sh's .gpu/ (node + Vulkan loader), carry both and run there:
//   source .gpu/activate.sh; WEBSPARK_SHADERS=$PWD/shaders node .devbench/webspark.mjs bench kernels
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';

const out = '.devbench';
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/node_modules/webgpu/dist/linux-x64`, { recursive: true });
for (const f of ['package.json', 'index.js']) cpSync(`node_modules/webgpu/${f}`, `${out}/node_modules/webgpu/${f}`);
cpSync('node_modules/webgpu/dist/linux-x64/dawn.node', `${out}/node_modules/webgpu/dist/linux-x64/dawn.node`);
await build({
  stdin: {
    contents: "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));",
    resolveDir: '.',
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: `${out}/webspark.mjs`,
  // Loaded only by suites the device run does not use (image decoding, the browser page).
  external: ['webgpu', 'sharp', 'playwright-core', 'vite', '@tensorflow/*'],
  logLevel: 'warning',
});
console.log(`wrote ${out}/webspark.mjs and ${out}/node_modules/webgpu (linux-x64)`);
