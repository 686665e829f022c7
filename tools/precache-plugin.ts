/**
 * A Vite plugin (builds only) that writes the service worker of the static build:
 * src/platform/browser/service-worker.ts bundled on its own into one classic script at
 * `<outDir>/sw.js`, with this build's precache list written into it.
 *
 * The list is every file of the build output once it is complete (the hashed JS/CSS/worker
 * assets, index.html, and what public/ holds: icons, manifest, demo model, sample shard,
 * held-out photos), except sw.js itself, so nothing is listed by hand and nothing built is
 * left out. The version is a hash of every listed path and its bytes: a build that changes any
 * file gets a new cache name (and a new sw.js, which is how browsers notice an update).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin, ResolvedConfig } from 'vite';
import { precacheBytes, type PrecacheManifest } from '../src/platform/browser/offline-cache.ts';

export const SW_FILE = 'sw.js';
const SW_SOURCE = fileURLToPath(new URL('../src/platform/browser/service-worker.ts', import.meta.url));
const PLACEHOLDER = /(['"`])__WEBSPARK_PRECACHE_MANIFEST__\1/g;

function filesUnder(dir: string, root = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(path, root));
    else if (e.isFile()) out.push(relative(root, path).split(sep).join('/'));
  }
  return out;
}

/** The precache list of the build in `outDir` (sorted paths, sizes, version). */
export function precacheManifest(outDir: string): PrecacheManifest {
  const paths = filesUnder(outDir).filter((p) => p !== SW_FILE).sort();
  const version = createHash('sha256');
  const files = paths.map((path) => {
    const bytes = readFileSync(join(outDir, path));
    version.update(`${path}\0${createHash('sha256').update(bytes).digest('hex')}\n`);
    return { path, bytes: bytes.byteLength };
  });
  return { version: version.digest('hex').slice(0, 16), files };
}

/** The worker's source with the list written in; fails unless the placeholder is there exactly once. */
export function injectManifest(code: string, manifest: PrecacheManifest): string {
  const found = code.match(PLACEHOLDER)?.length ?? 0;
  if (found !== 1) throw new Error(`${SW_SOURCE}: expected the precache placeholder once in the bundled worker, found it ${found} times`);
  return code.replace(PLACEHOLDER, () => JSON.stringify(JSON.stringify(manifest)));
}

/** The worker bundled alone (no chunk shared with the page), as one script without imports. */
async function bundleWorker(config: ResolvedConfig): Promise<string> {
  const { build } = await import('vite');
  const out = await build({
    configFile: false,
    root: config.root,
    publicDir: false,
    logLevel: 'warn',
    build: { write: false, minify: config.build.minify !== false, target: config.build.target, lib: { entry: SW_SOURCE, formats: ['iife'], name: 'webspark_sw' } },
  });
  const outputs = (Array.isArray(out) ? out : [out]) as { output: { type: string; code?: string }[] }[];
  const chunks = outputs.flatMap((o) => o.output).filter((o) => o.type === 'chunk');
  if (chunks.length !== 1) throw new Error(`bundling ${SW_SOURCE} gave ${chunks.length} chunks, expected 1`);
  return chunks[0]!.code!;
}

export function precachePlugin(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'webspark-precache',
    apply: 'build',
    // The page registers the worker only where this is defined: built pages, not `vite dev`.
    config: () => ({ define: { __SERVICE_WORKER__: JSON.stringify(SW_FILE) } }),
    configResolved(c) {
      config = c;
    },
    // After the bundle and public/ are on disk, so the list is what the host will serve.
    async writeBundle() {
      const outDir = resolve(config.root, config.build.outDir);
      const manifest = precacheManifest(outDir);
      writeFileSync(join(outDir, SW_FILE), injectManifest(await bundleWorker(config), manifest));
      const mib = (precacheBytes(manifest) / 2 ** 20).toFixed(1);
      config.logger.info(`offline set (${SW_FILE}): ${manifest.files.length} files, ${mib} MiB, version ${manifest.version}`);
    },
  };
}
