// Packs `webspark bench` for a GPU machine that has no node_modules: one ESM bundle of the
// CLI, the Linux build of Dawn (the `webgpu` package) and sharp (the Node image decoder, so
// `bench train` can measure data wait on the bundled shard), in .devbench/ (git-ignored), and
// the same as .devbench.tar.xz (~12 MB: the raw folder is too large to carry next to .gpu/).
// With ../shared/gpu/prepare.sh's .gpu/ (node + Vulkan loader), carry .gpu and
// .devbench.tar.xz, and run tools/device-bench.sh there (see docs/benchmarks.md).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';

const out = '.devbench';
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/node_modules/webgpu/dist/linux-x64`, { recursive: true });
for (const f of ['package.json', 'index.js']) cpSync(`node_modules/webgpu/${f}`, `${out}/node_modules/webgpu/${f}`);
cpSync('node_modules/webgpu/dist/linux-x64/dawn.node', `${out}/node_modules/webgpu/dist/linux-x64/dawn.node`);
// sharp and what it loads at run time (its Linux x64 binary and libvips).
for (const pkg of ['sharp', 'detect-libc', 'semver', '@img/colour', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64']) {
  cpSync(`node_modules/${pkg}`, `${out}/node_modules/${pkg}`, { recursive: true });
}
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
  // Loaded only by suites the device run does not use (the browser page, the tfjs peer).
  external: ['webgpu', 'sharp', 'playwright-core', 'vite', '@tensorflow/*'],
  logLevel: 'warning',
});
execFileSync('tar', ['cJf', '.devbench.tar.xz', out]);
console.log(`wrote ${out}/ (CLI bundle, webgpu linux-x64, sharp) and .devbench.tar.xz`);
