/**
 * A tiny, fast training setup for tests (narrow ResNet, 64 px, batch 2, the bundled shard),
 * and a script entry so a test can continue a run in a fresh process:
 *   node --import tsx test/train/tiny-run.ts <checkpoint> <outDir> <steps>
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { NodeCheckpointStore } from '../../src/platform/node/checkpoint-store.ts';
import { DataLoader } from '../../src/data/loader.ts';
import { Context } from '../../src/tensor/context.ts';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { TINY_MODEL, modelFields } from '../../src/models/zoo.ts';
import { Trainer, type TrainConfig, type TrainerEvents, type TrainerOptions } from '../../src/train/trainer.ts';

export const SHARD = fileURLToPath(new URL('../../public/data/sample-000000.tar', import.meta.url));

export function tinyConfig(totalSteps: number): TrainConfig {
  return {
    ...modelFields(TINY_MODEL),
    inputSize: 64,
    decoderWidth: 32,
    maskRatio: 0.6,
    batchSize: 2,
    totalSteps,
    baseLr: 0.32,
    warmupSteps: 1,
    wd: 0.04,
    wdEnd: 0.2,
    optimizer: 'lamb',
    seed: 3,
    checkpointEvery: 0,
    previewEvery: 0,
    maxInFlight: 2,
    maxConsecutiveSkips: 5,
    dropPathRate: 0.1,
  };
}

export async function tinyTrainer(ctx: Context, config: TrainConfig, outDir: string, events: TrainerEvents = {}, options: TrainerOptions = {}) {
  const { shards } = await nodeShards(SHARD);
  const store = new NodeCheckpointStore(outDir, 10);
  const trainer = new Trainer(
    ctx,
    config,
    {
      loader: (cursor) => new DataLoader({ shards, decoder: new SharpDecoder(), batchSize: config.batchSize, seed: config.seed, shuffleBuffer: 8, augment: { size: config.inputSize }, cursor }),
      saveCheckpoint: async (step, parts) => store.save(step, parts),
    },
    events,
    options,
  );
  return { trainer, store };
}

async function continueRun(checkpoint: string, outDir: string, steps: number): Promise<void> {
  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  const { trainer } = await tinyTrainer(ctx, tinyConfig(steps), outDir);
  const file = readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  trainer.restore(file.arrays, file.metadata);
  const state = await trainer.train();
  process.stdout.write(`${JSON.stringify({ state, step: trainer.step })}\n`);
  ctx.dispose();
  gpu.destroy();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [checkpoint, outDir, steps] = process.argv.slice(2);
  await continueRun(checkpoint!, outDir!, Number(steps));
}
