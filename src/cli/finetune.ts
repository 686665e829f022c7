/**
 * `webspark finetune`: a classifier (the encoder's pooled last stage + a Linear head, timm's
 * keys) trained end to end on labelled images, from a pre-training checkpoint or exported
 * encoder (`--checkpoint`) or at random (`--random-init`). Writes DIR/metrics.jsonl (one line
 * per epoch: train loss, validation top-1 / top-5), a checkpoint per epoch (`--resume FILE`
 * continues), and DIR/classifier.safetensors at the end. The work is src/finetune/node-run.ts.
 */
import type { Args } from './args.ts';
import { runFinetune, type FinetuneRun } from '../finetune/node-run.ts';

const OPTIONS = [
  'data', 'val-data', 'val-fraction', 'split-seed', 'limit', 'val-limit', 'label-fraction', 'checkpoint', 'random-init', 'model',
  'input-size', 'drop-path', 'resume', 'out', 'steps', 'epochs', 'warmup-epochs', 'batch-size', 'base-lr', 'weight-decay',
  'layer-decay', 'label-smoothing', 'seed', 'no-zero-init', 'quiet',
];

export async function finetuneCommand(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const data = args.string('data');
  if (!data) throw new Error('--data SPEC is required (shards, a shard folder or an ImageFolder with labels)');
  const optional = (name: string, range: { min?: number; max?: number; integer?: boolean }) =>
    args.has(name) ? args.number(name, 0, range) : undefined;
  const run: FinetuneRun = {
    data,
    valFraction: args.number('val-fraction', 0.2, { min: 0.001, max: 0.999 }),
    splitSeed: args.number('split-seed', 0, { integer: true, min: 0 }),
    labelFraction: args.number('label-fraction', 1, { min: 1e-6, max: 1 }),
    randomInit: args.has('random-init'),
    out: args.string('out', 'runs/finetune'),
    epochs: args.number('epochs', 10, { min: 0.01 }),
    train: {
      batchSize: args.number('batch-size', 32, { integer: true, min: 2, max: 4096 }),
      baseLr: args.number('base-lr', 8e-3, { min: 0 }),
      weightDecay: args.number('weight-decay', 0.05, { min: 0 }),
      layerDecay: args.number('layer-decay', 0.7, { min: 1e-3, max: 1 }),
      labelSmoothing: args.number('label-smoothing', 0.1, { min: 0, max: 0.99 }),
      seed: args.number('seed', 0, { integer: true, min: 0 }),
    },
  };
  const set = <K extends keyof FinetuneRun>(key: K, v: FinetuneRun[K] | undefined) => v !== undefined && (run[key] = v);
  set('valData', args.string('val-data'));
  set('limit', optional('limit', { integer: true, min: 1 }));
  set('valLimit', optional('val-limit', { integer: true, min: 1 }));
  set('checkpoint', args.string('checkpoint'));
  set('model', args.string('model'));
  set('inputSize', optional('input-size', { integer: true, min: 32, max: 1024 }));
  set('dropPathRate', optional('drop-path', { min: 0, max: 0.99 }));
  set('resume', args.string('resume'));
  set('steps', optional('steps', { integer: true, min: 1 }));
  set('warmupEpochs', optional('warmup-epochs', { min: 0 }));
  if (args.has('no-zero-init')) run.zeroInitLastBn = false;

  const quiet = args.has('quiet') || !process.stdout.isTTY;
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
