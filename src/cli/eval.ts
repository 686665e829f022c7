/**
 * `webspark eval`: k-NN or linear-probe accuracy of a frozen encoder on labelled images
 * (WebDataset .cls, ImageFolder class folders, a parquet label column). The encoder comes from
 * a checkpoint (`--checkpoint`), or with `--random-init` is a freshly initialised encoder of
 * the same architecture (the baseline pre-training has to beat). Validation images come from
 * `--val-data`, or from a seeded split of `--data` by sample key (`--val-fraction`, `--split-seed`).
 */
import { readFileSync } from 'node:fs';
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { Context } from '../tensor/context.ts';
import { Rng } from '../util/rng.ts';
import { loadLabelledImages } from '../platform/node/labelled-images.ts';
import { evaluateEncoder, type Protocol } from '../eval/evaluate.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', help: 'the pre-trained weights (webspark or official); or `--random-init`' },
  model: { type: 'string', value: 'NAME', defaultText: "the checkpoint's", help: 'the architecture (required with `--random-init`)' },
  data: { type: 'string', value: 'SPEC', help: 'required: labelled images (shards with `.cls`, an ImageFolder, parquet with a label column)' },
  'val-data': { type: 'string', value: 'SPEC', help: 'validation images; without it, a seeded split of `--data` by sample key' },
  'val-fraction': { type: 'number', min: 0.001, max: 0.999, default: 0.2, help: 'share of `--data` held out for validation' },
  'split-seed': { type: 'integer', min: 0, default: 0, help: 'seeds the train/validation split' },
  protocol: { type: 'string', value: 'NAME', default: 'knn', help: '`knn` (cosine, weighted vote) or `linear` (a linear probe)' },
  'input-size': { type: 'integer', min: 32, max: 4096, defaultText: "the checkpoint's, else 64", help: 'image side in pixels, a multiple of 32' },
  limit: { type: 'integer', min: 1, defaultText: 'all', help: 'at most this many training images' },
  'val-limit': { type: 'integer', min: 1, defaultText: 'all', help: 'at most this many validation images' },
  k: { type: 'integer', min: 1, default: 20, help: 'k-NN: neighbours that vote' },
  temperature: { type: 'number', min: 1e-4, default: 0.07, help: 'k-NN: temperature of the vote weights' },
  epochs: { type: 'integer', min: 1, default: 30, help: 'linear probe: passes over the training features' },
  lr: { type: 'number', min: 0, default: 0.01, help: 'linear probe: AdamW learning rate' },
  'batch-size': { type: 'integer', min: 2, default: 256, help: 'linear probe: features per step' },
  seed: { type: 'integer', min: 0, default: 0, help: "seeds the random encoder and the probe's initialisation and order" },
  'random-init': { type: 'flag', help: 'evaluate a freshly initialised encoder (the baseline pre-training has to beat)' },
  json: { type: 'flag', help: 'print the result as one JSON line (no progress)' },
});

export const command: Command<typeof OPTIONS> = {
  name: 'eval',
  summary: 'k-NN / linear-probe accuracy of a frozen encoder: `--checkpoint FILE --data SPEC --protocol knn|linear`',
  options: OPTIONS,
  run: evalCommand,
};

export async function evalCommand(args: Args<typeof OPTIONS>): Promise<number> {
  const protocol = args.get('protocol') as Protocol;
  if (protocol !== 'knn' && protocol !== 'linear') throw new Error(`--protocol must be knn or linear, got '${protocol}'`);
  const data = args.get('data');
  if (!data) throw new Error('--data SPEC is required (shards, a shard folder or an ImageFolder with labels)');
  const checkpoint = args.get('checkpoint');
  const randomInit = args.get('random-init');
  if (!checkpoint && !randomInit) throw new Error('give --checkpoint FILE, or --random-init with --model (a random encoder)');

  const file = checkpoint ? readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint) : null;
  const config: SparKConfig = {
    ...file?.config,
    model: args.get('model') ?? file?.config.model ?? '',
    inputSize: args.get('input-size', file?.config.inputSize ?? 64),
  } as SparKConfig;
  if (!config.model) throw new Error(`${checkpoint ?? '--random-init'}: which model? pass --model`);
  const size = config.inputSize;
  if (size % 32) throw new Error(`--input-size must be a multiple of 32, got ${size}`);

  const seed = args.get('split-seed');
  const valFraction = args.get('val-fraction');
  const limit = args.get('limit', Infinity);
  const valLimit = args.get('val-limit', Infinity);
  const valData = args.get('val-data');
  const train = await loadLabelledImages(data, { size, limit, ...(valData ? {} : { split: { side: 'train', valFraction, seed } }) });
  const val = valData
    ? await loadLabelledImages(valData, { size, limit: valLimit })
    : await loadLabelledImages(data, { size, limit: valLimit, split: { side: 'val', valFraction, seed } });

  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const model = createSparK(ctx, new Rng(args.get('seed')), config);
    if (file && !randomInit) loadStateDict(model, file.arrays, false);
    const quiet = args.get('json');
    const result = await evaluateEncoder(ctx, model.encoder, train, val, {
      protocol,
      size,
      knn: { k: args.get('k'), temperature: args.get('temperature') },
      linear: {
        epochs: args.get('epochs'),
        lr: args.get('lr'),
        batchSize: args.get('batch-size'),
        seed: args.get('seed'),
      },
      onProgress: quiet ? undefined : (phase, done, total) => process.stderr.write(`\r${phase} ${done}/${total}   `),
    });
    const summary = {
      ...result,
      encoder: randomInit ? 'random-init' : checkpoint,
      model: config.model,
      inputSize: size,
      valImages: val.labels.length,
      split: valData ? { valData } : { valFraction, seed },
    };
    if (quiet) process.stdout.write(`${JSON.stringify({ ...summary, losses: undefined })}\n`);
    else process.stdout.write(`\n${protocol} accuracy ${(result.accuracy * 100).toFixed(2)} % (${result.correct}/${result.total}), ${result.trainImages} train images, ${result.featureDim}-d features\n`);
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
