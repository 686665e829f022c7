/**
 * `webspark finetune`: a classifier (the encoder's pooled last stage + a Linear head, timm's
 * keys) trained end to end on labelled images, from a pre-training checkpoint or exported
 * encoder (`--checkpoint`) or at random (`--random-init`). Writes DIR/metrics.jsonl (one line
 * per epoch: train loss, validation top-1 / top-5), a checkpoint per epoch (`--resume FILE`
 * continues), and DIR/classifier.safetensors at the end. The work is src/platform/node/finetune-run.ts.
 */
import { defineOptions, type Args } from './args.ts';
import { PRECISION_OPTION } from './precision-option.ts';
import type { Command } from './command.ts';
import { runFinetune, type FinetuneRun } from '../platform/node/finetune-run.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', help: 'the pre-trained encoder: a webspark or official SparK checkpoint, or an exported encoder; or `--random-init`' },
  'random-init': { type: 'flag', help: 'start from a freshly initialised encoder (the baseline pre-training has to beat); needs `--model`' },
  model: { type: 'string', value: 'NAME', defaultText: "the checkpoint's", help: 'the architecture (required with `--random-init`): a name `pretrain` takes, `tiny` included' },
  data: { type: 'string', value: 'SPEC', help: 'required: labelled images (shards with `.cls`, an ImageFolder, parquet with a label column)' },
  'val-data': { type: 'string', value: 'SPEC', help: 'validation images; without it, a seeded split of `--data` by sample key' },
  'val-fraction': { type: 'number', min: 0.001, max: 0.999, default: 0.2, help: 'share of `--data` held out for validation' },
  'split-seed': { type: 'integer', min: 0, default: 0, help: 'seeds the train/validation split' },
  limit: { type: 'integer', min: 1, defaultText: 'all', help: 'at most this many training images' },
  'val-limit': { type: 'integer', min: 1, defaultText: 'all', help: 'at most this many validation images' },
  'label-fraction': { type: 'number', min: 1e-6, max: 1, default: 1, help: 'keep round(F x n_c) (at least 1) images of every class c, chosen by `--seed`: class-balanced, reproducible' },
  'input-size': { type: 'integer', min: 32, max: 1024, defaultText: "the checkpoint's, else 64", help: 'image side in pixels, a multiple of 32' },
  steps: { type: 'integer', min: 1, defaultText: 'from `--epochs`', help: 'optimizer steps (instead of `--epochs`)' },
  epochs: { type: 'number', min: 0.01, default: 10, help: 'passes over the kept images (incomplete last batch dropped)' },
  'batch-size': { type: 'integer', min: 2, max: 4096, default: 32, help: 'images per step' },
  'base-lr': { type: 'number', min: 0, default: 8e-3, help: 'peak lr = base lr x batch / 256; AdamW (beta 0.9 / 0.999, eps 1e-8, no clipping)' },
  'warmup-epochs': { type: 'number', min: 0, defaultText: '1, at most 10 % of the steps', help: 'linear warm-up from 0.005 x peak, then cosine to 0.001 x peak' },
  'layer-decay': { type: 'number', min: 1e-3, max: 1, default: 0.7, help: 'layer-wise lr decay: stem x 0.7^5 ... layer4 x 0.7, head x 1 (ConvNeXt: the official 12-layer rule)' },
  'weight-decay': { type: 'number', min: 0, default: 0.05, help: 'AdamW weight decay, not on 1-D parameters (norms) and biases' },
  'label-smoothing': { type: 'number', min: 0, max: 0.99, default: 0.1, help: 'label smoothing of the cross-entropy' },
  'drop-path': { type: 'number', min: 0, max: 0.99, defaultText: "the model's", help: 'stochastic depth rate' },
  'no-zero-init': { type: 'flag', help: "with `--random-init` on a ResNet: keep each residual branch's last BatchNorm at 1 (timm zeroes it)" },
  out: { type: 'string', value: 'DIR', default: 'runs/finetune', help: '`metrics.jsonl`, a checkpoint per epoch (newest 3, atomic), `classifier.safetensors` at the end' },
  resume: { type: 'string', value: 'FILE', help: 'continue from a `finetune` checkpoint exactly (give the same `--data`, `--label-fraction`)' },
  seed: { type: 'integer', min: 0, default: 0, help: 'label fraction, data order, crops and flips, initialisation' },
  'eval-every': { type: 'integer', min: 0, default: 1, help: 'epochs between validations and checkpoints (0: only at the end; the last step always has both)' },
  quiet: { type: 'flag', help: 'no progress bar (one line per epoch)' },
  precision: PRECISION_OPTION,
});

export const command: Command<typeof OPTIONS> = {
  name: 'finetune',
  summary: 'fine-tune a classifier on labelled images: `--checkpoint FILE|--random-init --data SPEC [--label-fraction F] --out DIR`',
  options: OPTIONS,
  run: finetuneCommand,
};

export async function finetuneCommand(args: Args<typeof OPTIONS>): Promise<number> {
  const data = args.get('data');
  if (!data) throw new Error('--data SPEC is required (shards, a shard folder or an ImageFolder with labels)');
  const run: FinetuneRun = {
    data,
    valFraction: args.get('val-fraction'),
    splitSeed: args.get('split-seed'),
    labelFraction: args.get('label-fraction'),
    randomInit: args.get('random-init'),
    out: args.get('out'),
    epochs: args.get('epochs'),
    train: {
      batchSize: args.get('batch-size'),
      baseLr: args.get('base-lr'),
      weightDecay: args.get('weight-decay'),
      layerDecay: args.get('layer-decay'),
      labelSmoothing: args.get('label-smoothing'),
      seed: args.get('seed'),
    },
  };
  const set = <K extends keyof FinetuneRun>(key: K, v: FinetuneRun[K] | undefined) => v !== undefined && (run[key] = v);
  set('valData', args.get('val-data'));
  set('limit', args.get('limit'));
  set('valLimit', args.get('val-limit'));
  set('checkpoint', args.get('checkpoint'));
  set('model', args.get('model'));
  set('inputSize', args.get('input-size'));
  set('dropPathRate', args.get('drop-path'));
  set('resume', args.get('resume'));
  set('steps', args.get('steps'));
  set('warmupEpochs', args.get('warmup-epochs'));
  set('precision', args.get('precision'));
  set('evalEvery', args.get('eval-every'));
  if (args.get('no-zero-init')) run.zeroInitLastBn = false;

  const quiet = args.get('quiet') || !process.stdout.isTTY;
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const started = performance.now();
  const result = await runFinetune(run, {
    log,
    step: quiet ? undefined : (step, total, loss, lr) => process.stdout.write(`\r${progressLine(step + 1, total, loss, lr, started)}`),
    epoch: (m) =>
      log(
        `${quiet ? '' : '\n'}epoch ${m.epoch} (step ${m.step}): train loss ${m.trainLoss.toFixed(4)}, ` +
          `val top-1 ${(m.valTop1 * 100).toFixed(2)} %, top-5 ${(m.valTop5 * 100).toFixed(2)} % (${m.valImages} images), ${m.seconds.toFixed(1)} s`,
      ),
  });
  log(`${result.steps} steps on ${result.trainImages} images; classifier: ${result.classifier}`);
  return 0;
}

function progressLine(done: number, total: number, loss: number, lr: number, startedAt: number): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  const elapsed = (performance.now() - startedAt) / 1000;
  const eta = (elapsed / done) * (total - done);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)} ETA ${eta.toFixed(0)}s`;
}
