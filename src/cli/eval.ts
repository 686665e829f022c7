/**
 * `webspark eval`: k-NN or linear-probe accuracy of a frozen encoder on labelled images
 * (WebDataset .cls, ImageFolder class folders, a parquet label column). The encoder comes from
 * a checkpoint (`--checkpoint`), or with `--random-init` is a freshly initialised encoder of
 * the same architecture (the baseline pre-training has to beat). Validation images come from
 * `--val-data`, or from a seeded split of `--data` by sample key (`--val-fraction`, `--split-seed`).
 */
import { readFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { Context } from '../tensor/context.ts';
import { Rng } from '../util/rng.ts';
import { loadLabelledImages } from '../eval/node-data.ts';
import { evaluateEncoder, type Protocol } from '../eval/evaluate.ts';

const OPTIONS = [
  'checkpoint', 'model', 'data', 'val-data', 'val-fraction', 'split-seed', 'protocol', 'input-size', 'limit', 'val-limit',
  'k', 'temperature', 'epochs', 'lr', 'batch-size', 'seed', 'random-init', 'json',
];

export async function evalCommand(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const protocol = args.string('protocol', 'knn') as Protocol;
  if (protocol !== 'knn' && protocol !== 'linear') throw new Error(`--protocol must be knn or linear, got '${protocol}'`);
  const data = args.string('data');
  if (!data) throw new Error('--data SPEC is required (shards, a shard folder or an ImageFolder with labels)');
  const checkpoint = args.string('checkpoint');
  const randomInit = args.has('random-init');
  if (!checkpoint && !randomInit) throw new Error('give --checkpoint FILE, or --random-init with --model (a random encoder)');

  const file = checkpoint ? readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint) : null;
  const config: SparKConfig = {
    ...file?.config,
    model: args.string('model') ?? file?.config.model ?? '',
    inputSize: args.number('input-size', file?.config.inputSize ?? 64, { min: 32, max: 4096, integer: true }),
  } as SparKConfig;
  if (!config.model) throw new Error(`${checkpoint ?? '--random-init'}: which model? pass --model`);
  const size = config.inputSize;
  if (size % 32) throw new Error(`--input-size must be a multiple of 32, got ${size}`);

  const seed = args.number('split-seed', 0, { integer: true, min: 0 });
  const valFraction = args.number('val-fraction', 0.2, { min: 0.001, max: 0.999 });
  const limit = args.number('limit', Infinity, { integer: true, min: 1 });
  const valLimit = args.number('val-limit', Infinity, { integer: true, min: 1 });
  const valData = args.string('val-data');
  const train = await loadLabelledImages(data, { size, limit, ...(valData ? {} : { split: { side: 'train', valFraction, seed } }) });
  const val = valData
    ? await loadLabelledImages(valData, { size, limit: valLimit })
    : await loadLabelledImages(data, { size, limit: valLimit, split: { side: 'val', valFraction, seed } });

  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const model = createSparK(ctx, new Rng(args.number('seed', 0, { integer: true, min: 0 })), config);
    if (file && !randomInit) loadStateDict(model, file.arrays, false);
    const quiet = args.has('json');
    const result = await evaluateEncoder(ctx, model.encoder, train, val, {
      protocol,
      size,
      knn: { k: args.number('k', 20, { integer: true, min: 1 }), temperature: args.number('temperature', 0.07, { min: 1e-4 }) },
      linear: {
        epochs: args.number('epochs', 30, { integer: true, min: 1 }),
        lr: args.number('lr', 1e-2, { min: 0 }),
        batchSize: args.number('batch-size', 256, { integer: true, min: 2 }),
        seed: args.number('seed', 0, { integer: true, min: 0 }),
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
