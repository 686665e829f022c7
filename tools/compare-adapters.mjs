#!/usr/bin/env node
/**
 * The README's acceptance run (`pretrain --model resnet18 --input-size 64 --decoder-width 128`,
 * batch 8, bundled shard) on two Node drivers side by side: the runs alternate between the
 * drivers, so both see the same machine load. A driver is one per process, hence one child
 * process per run. Prints a table and, with --json FILE, writes the figures.
 *
 *   node tools/compare-adapters.mjs [--steps 6] [--rounds 2] [--adapters lavapipe,swiftshader] [--json out.json]
 *
 * The figure is the median `stepMs` (metrics.jsonl) of the replayed steps: steps 0 and 1 build
 * and record the step and are left out.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './median.mjs';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    adapters: { type: 'string', default: 'lavapipe,swiftshader' },
    json: { type: 'string' },
  },
});
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const adapters = values.adapters.split(',');
if (!(steps >= 3) || !(rounds >= 1)) throw new Error('--steps must be at least 3 (two are set-up) and --rounds at least 1');

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'webspark-adapters-'));
const stepMs = Object.fromEntries(adapters.map((a) => [a, []]));
const wallS = Object.fromEntries(adapters.map((a) => [a, []]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const adapter of adapters) {
      const out = join(work, `${adapter}-${r}`);
      const args = ['src/cli/webspark.mjs', 'pretrain', '--model', 'resnet18', '--input-size', '64', '--decoder-width', '128',
        '--batch-size', '8', '--steps', String(steps), '--checkpoint-every', '0', '--preview-every', '0', '--quiet', '--out', out];
      const t0 = performance.now();
      const run = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, WEBSPARK_ADAPTER: adapter }, encoding: 'utf8' });
      const seconds = (performance.now() - t0) / 1000;
      if (run.status !== 0) throw new Error(`${adapter}, round ${r + 1}: pretrain exited ${run.status}\n${run.stderr.slice(-2000)}`);
      const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const replayed = metrics.filter((m) => m.step >= 2 && typeof m.stepMs === 'number').map((m) => m.stepMs);
      stepMs[adapter].push(...replayed);
      wallS[adapter].push(seconds);
      process.stderr.write(`${adapter} round ${r + 1}: median step ${median(replayed).toFixed(0)} ms, process ${seconds.toFixed(1)} s\n`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const result = adapters.map((a) => ({ adapter: a, medianStepMs: median(stepMs[a]), steps: stepMs[a].length, medianProcessS: median(wallS[a]) }));
const base = result[result.length - 1];
console.log(`pretrain resnet18 64 px, batch 8, decoder 128: ${steps} steps x ${rounds} rounds, alternating`);
console.log('adapter'.padEnd(14) + 'step ms'.padStart(10) + 'process s'.padStart(11) + `  vs ${base.adapter}`);
for (const r of result) {
  console.log(r.adapter.padEnd(14) + r.medianStepMs.toFixed(0).padStart(10) + r.medianProcessS.toFixed(1).padStart(11) +
    `  ${(base.medianStepMs / r.medianStepMs).toFixed(2)}x`);
}
if (values.json) writeFileSync(values.json, `${JSON.stringify({ steps, rounds, result }, null, 2)}\n`);
