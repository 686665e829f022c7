#!/usr/bin/env node
/**
 * Mixed precision against f32, the two figures its acceptance asks for, on one adapter:
 *
 * 1. Learning: the README's acceptance run (`pretrain --model resnet18 --input-size 64
 *    --decoder-width 128 --batch-size 8`, bundled shard) for N steps in each precision from the
 *    same seed, the runs alternating (one child process each). Printed: the mean absolute
 *    difference of the two loss curves relative to the mean loss of the reference precision
 *    (the last in --precisions), against the 2 % target.
 * 2. Memory: `bench train --memory-only --model M` in each precision at the same batch and
 *    input size (bench train's defaults unless given: 224 px, batch 32 on a GPU; 64 px, batch 2
 *    on a software adapter): the step is recorded, not run, so any shape takes seconds;
 *    `activationBytes` (the recorded step's own buffers, as `bench train` reports them) of
 *    each, and their ratio against the 0.55x target; `peakBytes` too. The step's own buffers
 *    also hold parameter-sized scratch (the optimizer's update, weight-gradient partial sums),
 *    which dominates at a small batch: the ratio means most at a batch where activations do.
 *    (lavapipe binds at most 128 MiB per buffer: at 224 px its largest f32 batch is 10, where
 *    the decoder's last upsampling holds 48 channels at full resolution.)
 *
 *   node tools/compare-precision.mjs [--steps 30] [--precisions f16,f32] [--models resnet18,resnet50]
 *     [--batch-size 8] [--bench-batch B] [--bench-size S] [--seed 0] [--json out.json]
 *
 * `--precisions f32,f32` runs the whole comparison with f32 on both sides (difference 0,
 * ratio 1.00): a check of the tool itself on an adapter or build without f16.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '30' },
    precisions: { type: 'string', default: 'f16,f32' },
    models: { type: 'string', default: 'resnet18,resnet50' },
    'batch-size': { type: 'string', default: '8' },
    'bench-batch': { type: 'string' },
    'bench-size': { type: 'string' },
    seed: { type: 'string', default: '0' },
    json: { type: 'string' },
  },
});
const steps = Number(values.steps);
const precisions = values.precisions.split(',');
const models = values.models.split(',').filter(Boolean);
if (!(Number.isInteger(steps) && steps >= 1)) throw new Error('--steps must be a whole number of at least 1');
if (precisions.length !== 2 || precisions.some((p) => p !== 'f16' && p !== 'f32')) throw new Error('--precisions must name two of f16, f32 (compared, reference)');
const TARGET_LOSS_DIFF = 0.02;
const TARGET_MEMORY_RATIO = 0.55;

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'webspark-precision-'));

/** Runs `webspark ARGS`; throws with the tail of its output when it fails. */
function webspark(what, args) {
  const run = spawnSync(process.execPath, ['src/cli/webspark.mjs', ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`${what}: webspark exited ${run.status}\n${(run.stdout + run.stderr).slice(-2000)}`);
  return run.stdout;
}

/** The loss curve of the acceptance run in `precision` (metrics.jsonl, by step). */
function lossCurve(precision, side) {
  const out = join(work, `pretrain-${side}-${precision}`);
  const log = webspark(`pretrain ${precision}`, [
    'pretrain', '--model', 'resnet18', '--input-size', '64', '--decoder-width', '128', '--batch-size', values['batch-size'],
    '--steps', String(steps), '--seed', values.seed, '--precision', precision,
    '--checkpoint-every', '0', '--preview-every', '0', '--quiet', '--out', out,
  ]);
  const line = log.split('\n').find((l) => l.startsWith('precision '));
  process.stderr.write(`pretrain ${side}: ${line ?? '(no precision line)'}\n`);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const loss = new Array(steps).fill(NaN);
  for (const m of metrics) loss[m.step] = m.loss;
  return { loss, skipped: metrics.at(-1)?.skippedSteps ?? 0, lossScale: metrics.at(-1)?.lossScale ?? 1 };
}

/** `bench train` figures of `model` in `precision`. */
function benchMemory(model, precision, side) {
  const json = join(work, `bench-${model}-${side}-${precision}.json`);
  webspark(`bench train ${model} ${precision}`, [
    'bench', 'train', '--memory-only', '--model', model, '--precision', precision, '--json', json,
    ...(values['bench-batch'] ? ['--batch', values['bench-batch']] : []),
    ...(values['bench-size'] ? ['--input-size', values['bench-size']] : []),
  ]);
  const s = JSON.parse(readFileSync(json, 'utf8')).summary.train;
  process.stderr.write(`bench train ${model} ${side} (${s.precision}): activations ${mib(s.activationBytes)}, peak ${mib(s.peakBytes)}\n`);
  return { activationBytes: s.activationBytes, peakBytes: s.peakBytes, precision: s.precision, batch: s.batch, inputSize: s.inputSize };
}

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const [compared, reference] = precisions;
let result;
try {
  // Alternating: compared, reference, so both see the same machine load as far as it goes.
  const a = lossCurve(compared, 'compared');
  const b = lossCurve(reference, 'reference');
  const meanAbsDiff = mean(a.loss.map((l, i) => Math.abs(l - b.loss[i])));
  const relative = meanAbsDiff / mean(b.loss);
  const memory = models.map((model) => {
    const x = benchMemory(model, compared, 'compared');
    const y = benchMemory(model, reference, 'reference');
    return { model, compared: x, reference: y, activationRatio: x.activationBytes / y.activationBytes, peakRatio: x.peakBytes / y.peakBytes };
  });
  result = { steps, precisions, seed: Number(values.seed), batchSize: Number(values['batch-size']), loss: { compared: a, reference: b, meanAbsDiff, relative }, memory };
} finally {
  rmSync(work, { recursive: true, force: true });
}

const { loss, memory } = result;
console.log(`learning: pretrain resnet18 64 px, batch ${result.batchSize}, decoder 128, ${steps} steps, seed ${result.seed}: ${compared} against ${reference}`);
console.log(`  mean loss ${mean(loss.reference.loss).toFixed(4)} (${reference}), ${mean(loss.compared.loss).toFixed(4)} (${compared}); ` +
  `mean |difference| ${loss.meanAbsDiff.toExponential(3)} = ${(100 * loss.relative).toFixed(2)} % of the mean loss ` +
  `(target <= ${100 * TARGET_LOSS_DIFF} %: ${loss.relative <= TARGET_LOSS_DIFF ? 'met' : 'NOT met'})`);
console.log(`  skipped steps ${loss.compared.skipped} (${compared}), ${loss.reference.skipped} (${reference}); last loss scale ${loss.compared.lossScale} (${compared})`);
console.log('memory: bench train --memory-only');
for (const m of memory) {
  console.log(`  ${m.model.padEnd(10)} B${m.reference.batch} ${m.reference.inputSize} px: activations ${mib(m.compared.activationBytes)} (${compared}) / ${mib(m.reference.activationBytes)} (${reference}) = ` +
    `${m.activationRatio.toFixed(3)}x (target <= ${TARGET_MEMORY_RATIO}x: ${m.activationRatio <= TARGET_MEMORY_RATIO ? 'met' : 'NOT met'}); ` +
    `peak ${mib(m.compared.peakBytes)} / ${mib(m.reference.peakBytes)} = ${m.peakRatio.toFixed(3)}x`);
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
