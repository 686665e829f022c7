/**
 * The fine-tuning comparison of docs/evaluation.md: every (initialisation, label fraction,
 * seed) fine-tuned with the same recipe and budget, one `webspark finetune` run each (in this
 * process, one after another), then a table of mean validation top-1 +- standard error per
 * cell and pre-training's gain over each random initialisation.
 *
 *   node --import tsx tools/finetune-experiment.ts --data 'data/fmnist/train-{000000..000005}.tar' \
 *     --val-data data/fmnist/test-000000.tar --checkpoint runs/pre/checkpoint-N.safetensors \
 *     [--model resnet18] [--input-size 64] [--epochs 30] [--batch-size 64] [--fractions 0.01,0.1,1] \
 *     [--seeds 0,1,2] [--inits spark,random,random-no-zero-init] [--limit N] [--val-limit N] [--out runs/ft-exp]
 *
 * Each finished run appends a line to OUT/results.jsonl; a re-run skips the runs already there.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineOptions, parseOptions } from '../src/cli/args.ts';
import { runFinetune, type FinetuneRun } from '../src/platform/node/finetune-run.ts';
import { gain, summarize, type RunResultRow } from '../src/finetune/summary.ts';

const OPTIONS = defineOptions({
  out: { type: 'string', default: 'runs/ft-exp', help: 'results.jsonl and one folder per run' },
  data: { type: 'string', help: 'required: labelled training images' },
  'val-data': { type: 'string', help: 'validation images (else a seeded split of --data)' },
  checkpoint: { type: 'string', help: 'the pre-training, for the spark runs' },
  inits: { type: 'string', default: 'spark,random,random-no-zero-init', help: 'initialisations to compare' },
  fractions: { type: 'string', default: '0.01,0.1,1', help: 'label fractions' },
  seeds: { type: 'string', default: '0,1,2', help: 'seeds per cell' },
  model: { type: 'string', default: 'resnet18', help: 'the architecture' },
  'input-size': { type: 'integer', min: 32, default: 64, help: 'image side in pixels' },
  epochs: { type: 'number', min: 0.01, default: 30, help: 'epochs per run' },
  steps: { type: 'integer', min: 1, help: 'steps per run instead of --epochs (the same budget at every fraction)' },
  'eval-every': { type: 'integer', min: 0, default: 1, help: 'epochs between validations (0: only at the end)' },
  'batch-size': { type: 'integer', min: 2, default: 64, help: 'images per step' },
  'base-lr': { type: 'number', min: 0, default: 8e-3, help: 'base lr (peak = base x batch / 256)' },
  'layer-decay': { type: 'number', min: 1e-3, max: 1, default: 0.7, help: 'layer-wise lr decay' },
  precision: { type: 'string', help: 'f16 or f32 (default: as `finetune`)' },
  limit: { type: 'integer', min: 1, help: 'at most this many training images' },
  'val-limit': { type: 'integer', min: 1, help: 'at most this many validation images' },
});
const args = parseOptions(OPTIONS, process.argv.slice(2), { helpHint: 'the header of tools/finetune-experiment.ts' });
const out = args.get('out');
const data = args.get('data');
const checkpoint = args.get('checkpoint');
const inits = args.get('inits').split(',');
if (!data) throw new Error('--data SPEC is required');
if (inits.includes('spark') && !checkpoint) throw new Error('--checkpoint FILE (the pre-training) is required for the spark runs');
const fractions = args.get('fractions').split(',').map(Number);
const seeds = args.get('seeds').split(',').map(Number);
const resultsPath = join(out, 'results.jsonl');
mkdirSync(out, { recursive: true });
const done: RunResultRow[] = existsSync(resultsPath)
  ? readFileSync(resultsPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunResultRow)
  : [];

for (const fraction of fractions) {
  for (const seed of seeds) {
    for (const init of inits) {
      if (done.some((r) => r.init === init && r.fraction === fraction && r.seed === seed)) continue;
      const run: FinetuneRun = {
        data,
        valFraction: 0.2,
        splitSeed: 0,
        labelFraction: fraction,
        randomInit: init !== 'spark',
        model: args.get('model'),
        inputSize: args.get('input-size'),
        out: join(out, `${init}-${fraction}-${seed}`),
        epochs: args.get('epochs'),
        train: {
          batchSize: args.get('batch-size'),
          baseLr: args.get('base-lr'),
          weightDecay: 0.05,
          layerDecay: args.get('layer-decay'),
          labelSmoothing: 0.1,
          seed,
        },
      };
      const steps = args.get('steps');
      if (steps !== undefined) run.steps = steps;
      run.evalEvery = args.get('eval-every');
      const precision = args.get('precision');
      if (precision !== undefined) run.precision = precision;
      const valData = args.get('val-data');
      if (valData) run.valData = valData;
      const limit = args.get('limit');
      if (limit !== undefined) run.limit = limit;
      const valLimit = args.get('val-limit');
      if (valLimit !== undefined) run.valLimit = valLimit;
      if (init === 'spark') run.checkpoint = checkpoint!;
      if (init === 'random-no-zero-init') run.zeroInitLastBn = false;
      const result = await runFinetune(run, { log: (l) => process.stdout.write(`[${init} ${fraction} ${seed}] ${l}\n`) });
      const last = result.epochs.at(-1)!;
      const row = { init, fraction, seed, top1: last.valTop1, top5: last.valTop5, trainImages: result.trainImages, steps: result.steps };
      appendFileSync(resultsPath, `${JSON.stringify(row)}\n`);
      done.push(row);
    }
  }
}

const cells = summarize(done);
const pct = (v: number) => (Number.isNaN(v) ? '-' : (v * 100).toFixed(2));
process.stdout.write('\n| init | labels | runs | top-1 % (+- s.e.) |\n|---|---|---|---|\n');
for (const c of cells) process.stdout.write(`| ${c.init} | ${c.fraction * 100} % | ${c.runs} | ${pct(c.mean)} +- ${pct(c.se)} |\n`);
for (const c of cells.filter((x) => x.init === 'spark')) {
  for (const b of cells.filter((x) => x.init !== 'spark' && x.fraction === c.fraction)) {
    const g = gain(c, b);
    process.stdout.write(`spark - ${b.init} at ${c.fraction * 100} %: ${pct(g.diff)} +- ${pct(g.se)} points\n`);
  }
}
