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
import { parseArgs } from '../src/cli/args.ts';
import { runFinetune, type FinetuneRun } from '../src/finetune/node-run.ts';
import { gain, summarize, type RunResultRow } from '../src/finetune/summary.ts';

const args = parseArgs(process.argv.slice(2));
const out = args.string('out', 'runs/ft-exp');
const data = args.string('data');
const checkpoint = args.string('checkpoint');
const inits = args.string('inits', 'spark,random,random-no-zero-init').split(',');
if (!data) throw new Error('--data SPEC is required');
if (inits.includes('spark') && !checkpoint) throw new Error('--checkpoint FILE (the pre-training) is required for the spark runs');
const fractions = args.string('fractions', '0.01,0.1,1').split(',').map(Number);
const seeds = args.string('seeds', '0,1,2').split(',').map(Number);
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
        model: args.string('model', 'resnet18'),
        inputSize: args.number('input-size', 64, { integer: true, min: 32 }),
        out: join(out, `${init}-${fraction}-${seed}`),
        epochs: args.number('epochs', 30, { min: 0.01 }),
        train: {
          batchSize: args.number('batch-size', 64, { integer: true, min: 2 }),
          baseLr: args.number('base-lr', 8e-3, { min: 0 }),
          weightDecay: 0.05,
          layerDecay: args.number('layer-decay', 0.7, { min: 1e-3, max: 1 }),
          labelSmoothing: 0.1,
          seed,
        },
      };
      const valData = args.string('val-data');
      if (valData) run.valData = valData;
      if (args.has('limit')) run.limit = args.number('limit', 0, { integer: true, min: 1 });
      if (args.has('val-limit')) run.valLimit = args.number('val-limit', 0, { integer: true, min: 1 });
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
