/**
 * The docs/evaluation.md experiment, one variant per process: SparK pre-training of a narrow
 * ResNet on Fashion-MNIST shards (tools/make-fashion-mnist.mjs), then k-NN and linear-probe
 * accuracy of its frozen encoder; `--steps 0` evaluates the random initialisation.
 *
 *   node --import tsx tools/eval-experiment.ts --name sparse --data DIR --steps 300 \
 *     [--masking sparse|zero-out] [--single-scale] [--eval-train 2000] [--eval-test 1000] [--out runs/eval]
 *
 * Appends one JSON line per variant to OUT/results.jsonl and keeps the checkpoint in OUT/NAME.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../src/cli/args.ts';
import { createNodeGpu } from '../src/platform/node/gpu.ts';
import { nodeShards } from '../src/platform/node/data-sources.ts';
import { SharpDecoder } from '../src/platform/node/data-decode.ts';
import { NodeCheckpointStore } from '../src/platform/node/checkpoint-store.ts';
import { DataLoader } from '../src/data/loader.ts';
import { Context } from '../src/tensor/context.ts';
import { Trainer, type TrainConfig } from '../src/train/trainer.ts';
import { loadLabelledImages } from '../src/eval/node-data.ts';
import { evaluateEncoder } from '../src/eval/evaluate.ts';
import type { Masking } from '../src/models/spark.ts';

const args = parseArgs(process.argv.slice(2));
const name = args.string('name', 'run');
const dataDir = args.string('data', 'data/fashion-mnist');
const out = args.string('out', 'runs/eval');
const steps = args.number('steps', 300, { integer: true, min: 0 });
const size = args.number('input-size', 64, { integer: true, min: 32 });
const masking = args.string('masking', 'sparse') as Masking;
const hierarchical = !args.has('single-scale');

const config: TrainConfig = {
  model: 'resnet18',
  // A narrow ResNet (about 1/4 of ResNet-18's width, one block per stage) that fits the CPU budget.
  resnet: { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 16, planes: [16, 32, 64, 128] },
  inputSize: size,
  decoderWidth: 64,
  maskRatio: 0.6,
  masking,
  hierarchical,
  batchSize: args.number('batch-size', 32, { integer: true, min: 2 }),
  totalSteps: Math.max(steps, 1),
  baseLr: (0.1 * 256) / args.number('batch-size', 32, { integer: true, min: 2 }),
  warmupSteps: Math.max(1, Math.round(steps * 0.1)),
  wd: 0.04,
  wdEnd: 0.2,
  optimizer: 'lamb',
  seed: args.number('seed', 0, { integer: true, min: 0 }),
  checkpointEvery: 0,
  previewEvery: 0,
  maxInFlight: 2,
  maxConsecutiveSkips: 5,
};

const gpu = await createNodeGpu();
const ctx = new Context(gpu);
const dir = join(out, name);
mkdirSync(dir, { recursive: true });
const { shards } = await nodeShards(join(dataDir, 'train-000000.tar'));
const store = new NodeCheckpointStore(dir, 1);
const trainer = new Trainer(
  ctx,
  config,
  {
    loader: (cursor) => new DataLoader({ shards, decoder: new SharpDecoder(), batchSize: config.batchSize, seed: config.seed, shuffleBuffer: 512, augment: { size }, cursor }),
    saveCheckpoint: async (step, parts) => store.save(step, parts),
  },
  { metrics: (m) => (m.step % 25 === 0 || m.step === steps - 1) && process.stderr.write(`${name} step ${m.step} loss ${m.loss.toFixed(4)} ${m.imagesPerSec.toFixed(1)} img/s\n`) },
);
const t0 = performance.now();
if (steps > 0) {
  await trainer.train(steps);
}
const pretrainSeconds = (performance.now() - t0) / 1000;
const train = await loadLabelledImages(join(dataDir, 'train-000001.tar'), { size, limit: args.number('eval-train', 2000, { integer: true, min: 10 }) });
const test = await loadLabelledImages(join(dataDir, 'test-000000.tar'), { size, limit: args.number('eval-test', 1000, { integer: true, min: 10 }) });
const result: Record<string, unknown> = { name, steps, masking, hierarchical, size, config: config.resnet, pretrainSeconds };
for (const protocol of ['knn', 'linear'] as const) {
  const r = await evaluateEncoder(ctx, trainer.model.encoder, train, test, { protocol, size, linear: { epochs: 30, lr: 1e-2, batchSize: 256, seed: 0 } });
  result[protocol] = { accuracy: r.accuracy, correct: r.correct, total: r.total, trainAccuracy: r.trainAccuracy, seconds: r.seconds };
  process.stderr.write(`${name} ${protocol} ${(r.accuracy * 100).toFixed(2)} %\n`);
}
appendFileSync(join(out, 'results.jsonl'), `${JSON.stringify(result)}\n`);
ctx.dispose();
gpu.destroy();
