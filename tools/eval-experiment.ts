/**
 * The docs/evaluation.md experiment, variants in one process (they share the compiled
 * pipelines): SparK pre-training of a narrow ResNet on Fashion-MNIST shards
 * (tools/make-fashion-mnist.mjs), then k-NN and linear-probe accuracy of its frozen encoder.
 * Variants: random (no pre-training), random-no-zero-init (the same, without timm's zeroed
 * last BatchNorm per residual branch, which leaves a fresh ResNet nearly blind), sparse,
 * zero-out, single-scale.
 *
 *   node --import tsx tools/eval-experiment.ts --data DIR --steps 100 --input-size 64 \
 *     [--variants random,sparse,zero-out,single-scale] [--eval-train 1000] [--eval-test 500] [--out runs/eval]
 *
 * Appends one JSON line per variant to OUT/results.jsonl and keeps each checkpoint in OUT/NAME.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineOptions, parseOptions } from '../src/cli/args.ts';
import { createNodeGpu } from '../src/platform/node/gpu.ts';
import { nodeShards } from '../src/platform/node/data-sources.ts';
import { SharpDecoder } from '../src/platform/node/data-decode.ts';
import { NodeCheckpointStore } from '../src/platform/node/checkpoint-store.ts';
import { DataLoader } from '../src/data/loader.ts';
import { Context } from '../src/tensor/context.ts';
import { Trainer, type TrainConfig } from '../src/train/trainer.ts';
import { loadLabelledImages } from '../src/platform/node/labelled-images.ts';
import { evaluateFeatures, featuresOf } from '../src/eval/evaluate.ts';
import type { Masking } from '../src/models/spark.ts';

const OPTIONS = defineOptions({
  data: { type: 'string', default: 'data/fashion-mnist', help: 'folder of the Fashion-MNIST shards' },
  out: { type: 'string', default: 'runs/eval', help: 'results.jsonl and one checkpoint folder per variant' },
  steps: { type: 'integer', min: 1, default: 100, help: 'pre-training steps per variant' },
  'input-size': { type: 'integer', min: 32, default: 64, help: 'image side in pixels' },
  'batch-size': { type: 'integer', min: 2, default: 16, help: 'pre-training batch' },
  variants: { type: 'string', default: 'random,sparse,zero-out,single-scale', help: 'comma-separated variants' },
  'eval-train': { type: 'integer', min: 10, default: 1000, help: 'labelled training images for the protocols' },
  'eval-test': { type: 'integer', min: 10, default: 500, help: 'labelled test images' },
  seed: { type: 'integer', min: 0, default: 0, help: 'seeds each variant' },
});
const args = parseOptions(OPTIONS, process.argv.slice(2), { helpHint: 'the header of tools/eval-experiment.ts' });
const dataDir = args.get('data');
const out = args.get('out');
const steps = args.get('steps');
const size = args.get('input-size');
const batchSize = args.get('batch-size');
const variants = args.get('variants').split(',');
// The mask grid is input/32 patches a side: at 32 px it is 1x1 and round(1 x 0.4) = 0 patches
// stay visible, so the encoder sees nothing and pre-training cannot train it.
// The random baselines mask nothing, so they may run at 32 px.
if (size / 32 < 2 && variants.some((v) => !v.startsWith('random'))) {
  throw new Error(`--input-size ${size} gives a ${size / 32}x${size / 32} mask grid with no visible patch: use 64 or more to pre-train (the random-* variants alone may use 32)`);
}
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

function configFor(masking: Masking, hierarchical: boolean, zeroInitLastBn: boolean): TrainConfig {
  return {
    zeroInitLastBn,
    model: 'resnet18',
    // A narrow ResNet (1/4 of ResNet-18's width, one block per stage) that fits the CPU budget.
    resnet: { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 16, planes: [16, 32, 64, 128] },
    inputSize: size,
    decoderWidth: 64,
    maskRatio: 0.6,
    masking,
    hierarchical,
    batchSize,
    totalSteps: steps,
    // The CLI's small-scale default: peak lr 0.1 whatever the batch (src/cli/pretrain.ts).
    baseLr: (0.1 * 256) / batchSize,
    warmupSteps: Math.max(1, Math.round(steps * 0.1)),
    wd: 0.04,
    wdEnd: 0.2,
    optimizer: 'lamb',
    seed: args.get('seed'),
    checkpointEvery: 0,
    previewEvery: 0,
    maxInFlight: 2,
    maxConsecutiveSkips: 5,
  };
}

const gpu = await createNodeGpu();
const { shards } = await nodeShards(join(dataDir, 'train-000000.tar'));
log('loading evaluation images');
const train = await loadLabelledImages(join(dataDir, 'train-000001.tar'), { size, limit: args.get('eval-train') });
const test = await loadLabelledImages(join(dataDir, 'test-000000.tar'), { size, limit: args.get('eval-test') });
for (const name of variants) {
  const masking: Masking = name === 'zero-out' ? 'zero-out' : 'sparse';
  const config = configFor(masking, name !== 'single-scale', name !== 'random-no-zero-init');
  const ctx = new Context(gpu);
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  const store = new NodeCheckpointStore(dir, 1);
  const lossLog: number[] = [];
  const trainer = new Trainer(
    ctx,
    config,
    {
      loader: (cursor) => new DataLoader({ shards, decoder: new SharpDecoder(), batchSize, seed: config.seed, shuffleBuffer: 256, augment: { size }, cursor }),
      saveCheckpoint: async (step, parts) => store.save(step, parts),
    },
    {
      metrics: (m) => {
        lossLog.push(m.loss);
        if (m.step % 10 === 0 || m.step === steps - 1) log(`${name} step ${m.step} loss ${m.loss.toFixed(4)} ${m.imagesPerSec.toFixed(1)} img/s`);
      },
    },
  );
  const t0 = performance.now();
  const pretrained = !name.startsWith('random');
  if (pretrained) await trainer.train(steps);
  const pretrainSeconds = (performance.now() - t0) / 1000;
  const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
  const result: Record<string, unknown> = {
    name, steps: pretrained ? steps : 0, masking, hierarchical: config.hierarchical, size, batchSize, resnet: config.resnet,
    pretrainSeconds, lossFirst10: mean(lossLog.slice(0, 10)), lossLast10: mean(lossLog.slice(-10)),
    evalTrain: train.labels.length, evalTest: test.labels.length,
  };
  // One feature extraction serves both protocols.
  const f0 = performance.now();
  const ft = await featuresOf(ctx, trainer.model.encoder, train, size, undefined);
  const fv = await featuresOf(ctx, trainer.model.encoder, test, size, undefined);
  const featureSeconds = (performance.now() - f0) / 1000;
  for (const protocol of ['knn', 'linear'] as const) {
    const r = await evaluateFeatures(ctx, ft, fv, { protocol, linear: { epochs: 30, lr: 1e-2, batchSize: 128, seed: 0 } }, featureSeconds);
    result[protocol] = { accuracy: r.accuracy, correct: r.correct, total: r.total, trainAccuracy: r.trainAccuracy, seconds: r.seconds };
    log(`${name} ${protocol} ${(r.accuracy * 100).toFixed(2)} %`);
  }
  appendFileSync(join(out, 'results.jsonl'), `${JSON.stringify(result)}\n`);
  ctx.dispose();
}
gpu.destroy();
