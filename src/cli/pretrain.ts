/**
 * `webspark pretrain`: SparK pre-training from the command line, on the bundled sample shard
 * by default. Writes DIR/metrics.jsonl (one object per step), checkpoints (atomic, newest 3
 * kept) and reconstruction PNGs; `--resume FILE` continues a run exactly where it stopped.
 *
 * Defaults are chosen to learn at small scale. The official recipe (base lr 2e-4 x batch/256,
 * 40 warm-up epochs, made for batch 4096 and 1600 epochs) barely moves the weights in a short,
 * small-batch run; `--official` restores it.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Args } from './args.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { NodeCheckpointStore } from '../platform/node/checkpoint-store.ts';
import { writeGridPng } from '../platform/node/images.ts';
import { denormalizeRgb } from '../data/imagenet.ts';
import { nodeShards } from '../platform/node/data-sources.ts';
import { NodeTuneStore } from '../platform/node/tune-store.ts';
import { SharpDecoder } from '../platform/node/data-decode.ts';
import { DataLoader } from '../data/loader.ts';
import { countSamples } from '../data/count.ts';
import { isUrl } from '../data/sources.ts';
import type { Shard } from '../data/types.ts';
import { Context } from '../tensor/context.ts';
import { MODEL_NAMES } from '../models/registry.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { officialModelArrays } from '../io/export.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { OFFICIAL_SCHEDULE } from '../optim/schedule.ts';
import { SMALL_SCALE, describeSchedule, smallScaleBaseLr, smallScaleWarmup } from '../train/lr-rule.ts';
import { Trainer, type Preview, type StepMetrics, type TrainConfig } from '../train/trainer.ts';
import { validateTrainConfig } from '../train/config.ts';
import { Supervisor } from '../train/supervisor.ts';
import { outOfMemoryAdvice } from '../train/memory-estimate.ts';
import { GpuOutOfMemoryError } from '../gpu/errors.ts';

export const DEFAULT_DATA = fileURLToPath(new URL('../../public/data/sample-000000.tar', import.meta.url));

const OPTIONS = [
  'data', 'model', 'input-size', 'batch-size', 'epochs', 'steps', 'mask-ratio', 'base-lr', 'warmup-epochs',
  'decoder-width', 'out', 'resume', 'seed', 'optimizer', 'official', 'checkpoint-every', 'preview-every',
  'shuffle-buffer', 'token', 'quiet', 'autotune',
];

/** Small-scale defaults: the rule shared with the browser app (src/train/lr-rule.ts). */
export { SMALL_SCALE };

function progressLine(m: StepMetrics, total: number, startedAt: number): string {
  const done = m.step + 1;
  const width = 24;
  const filled = Math.round((done / total) * width);
  const elapsed = (performance.now() - startedAt) / 1000;
  const eta = (elapsed / done) * (total - done);
  const fmt = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${(s / 60).toFixed(1)}m` : `${s.toFixed(0)}s`);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ` +
    `${m.imagesPerSec.toFixed(1)} img/s ETA ${fmt(eta)}`;
}

async function writePreview(dir: string, p: Preview): Promise<string> {
  const per = p.size * p.size * 3;
  const tiles: Uint8Array[] = [];
  for (let b = 0; b < Math.min(p.batch, 4); b++) {
    for (const a of [p.original, p.masked, p.reconstruction, p.composite]) tiles.push(denormalizeRgb(a.subarray(b * per, (b + 1) * per)));
  }
  const path = join(dir, `reconstruction-${String(p.step).padStart(6, '0')}.png`);
  await writeGridPng(path, tiles, p.size, 4);
  return path;
}

export async function pretrain(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const official = args.has('official');
  const out = args.string('out', 'runs/pretrain');
  const data = args.string('data', DEFAULT_DATA);
  // --resume takes a webspark checkpoint (continues exactly) or an official SparK checkpoint
  // (.pth or safetensors with official keys: weights only, a fresh run from them). What the
  // file says about the model is the default for --model / --input-size / --decoder-width.
  const resume = args.string('resume');
  const resumeFile = resume ? readWeightFile(new Uint8Array(readFileSync(resume)), resume) : null;
  const fromFile = resumeFile?.config ?? {};
  const model = args.string('model', fromFile.model ?? 'resnet18');
  if (!MODEL_NAMES.includes(model as never)) throw new Error(`--model: unknown model '${model}' (known: ${MODEL_NAMES.join(', ')})`);
  const batchSize = args.number('batch-size', 8, { min: 1, max: 4096, integer: true });
  const inputSize = args.number('input-size', fromFile.inputSize ?? (official ? 224 : 64), { min: 32, max: 1024, integer: true });
  const token = args.string('token');
  const dataset = await nodeShards(data.split(','), token ? { http: { headers: { Authorization: `Bearer ${token}` } } } : {});
  const stepsPerEpoch = await estimateStepsPerEpoch(data.split(','), dataset.shards, batchSize, !args.has('steps') || args.has('warmup-epochs'));
  const steps = args.has('steps')
    ? args.number('steps', 0, { min: 1, integer: true })
    : Math.max(1, Math.round(args.number('epochs', official ? OFFICIAL_SCHEDULE.epochs : 20, { min: 0.01 }) * stepsPerEpoch));
  const warmupSteps = args.has('warmup-epochs')
    ? args.number('warmup-epochs', 0, { min: 0 }) * stepsPerEpoch
    : official
      ? OFFICIAL_SCHEDULE.warmupEpochs * stepsPerEpoch
      : smallScaleWarmup(steps);
  const config: TrainConfig = {
    model,
    inputSize,
    decoderWidth: args.number('decoder-width', fromFile.decoderWidth ?? (official ? 768 : 128), { min: 32, max: 4096, integer: true }),
    maskRatio: args.number('mask-ratio', 0.6, { min: 0, max: 0.99 }),
    batchSize,
    totalSteps: steps,
    baseLr: args.number('base-lr', official ? OFFICIAL_SCHEDULE.baseLr : smallScaleBaseLr(batchSize), { min: 0 }),
    warmupSteps,
    wd: OFFICIAL_SCHEDULE.wd,
    wdEnd: OFFICIAL_SCHEDULE.wdEnd,
    optimizer: (args.string('optimizer', 'lamb') as TrainConfig['optimizer']),
    seed: args.number('seed', 0, { integer: true, min: 0 }),
    checkpointEvery: args.number('checkpoint-every', Math.max(10, Math.round(steps / 5)), { min: 0, integer: true }),
    previewEvery: args.number('preview-every', Math.max(10, Math.round(steps / 5)), { min: 0, integer: true }),
    maxInFlight: 2,
    maxConsecutiveSkips: 5,
  };
  validateTrainConfig(config);

  mkdirSync(out, { recursive: true });
  const store = new NodeCheckpointStore(out);
  const quiet = args.has('quiet') || !process.stdout.isTTY;
  const metricsPath = join(out, 'metrics.jsonl');
  const log = (line: string) => process.stdout.write(`${line}\n`);
  let startedAt = performance.now();
  // The supervisor owns Gpu + Context + Trainer: on a lost device it builds new ones and
  // resumes from the newest checkpoint in `out`; on a full disk it pauses (src/train/supervisor.ts).
  const supervisor = new Supervisor({
    build: async () => {
      const gpu = await createNodeGpu();
      const ctx = new Context(gpu);
      return { trainer: makeTrainer(ctx), dispose: () => (ctx.dispose(), gpu.destroy()) };
    },
    latest: async () => {
      const c = store.latest();
      return c ? readWeightFile(new Uint8Array(readFileSync(c.path)), c.path) : null;
    },
    notice: (msg) => log(`${quiet ? '' : '\n'}${msg}`),
  });
  const makeTrainer = (ctx: Context) =>
    new Trainer(
      ctx,
      config,
      {
        loader: (cursor) =>
          new DataLoader({
            shards: dataset.shards,
            decoder: new SharpDecoder(),
            batchSize,
            seed: config.seed,
            shuffleBuffer: args.number('shuffle-buffer', 256, { min: 0, integer: true }),
            augment: { size: inputSize },
            cursor,
          }),
        saveCheckpoint: async (step, parts) => store.save(step, parts),
      },
      {
        metrics: (m) => {
          appendFileSync(metricsPath, `${JSON.stringify(m)}\n`);
          if (!quiet) process.stdout.write(`\r${progressLine(m, steps, startedAt)}`);
          else if (m.step % 10 === 0 || m.step + 1 === steps) log(progressLine(m, steps, startedAt));
        },
        preview: (p) => void writePreview(out, p).then((path) => quiet || log(`\nreconstructions: ${path}`)),
        checkpoint: ({ step, where }) => log(`${quiet ? '' : '\n'}checkpoint at step ${step}: ${where}`),
        notice: (msg) => log(`${quiet ? '' : '\n'}${msg}`),
      },
      // --autotune: tune the conv kernels after step 0 (src/ops/autotune.ts), cached per adapter.
      args.has('autotune') ? { autotune: { store: new NodeTuneStore(undefined, log), log } } : {},
    );
  try {
    const trainer = await supervisor.start();
    const gpu = trainer.ctx.gpu;
    if (resume && resumeFile?.metadata['webspark.run']) {
      trainer.restore(resumeFile.arrays, resumeFile.metadata);
      log(`resumed from ${resume} at step ${trainer.step}`);
    } else if (resume && resumeFile) {
      // An official checkpoint: its torch optimizer state and epoch do not map onto this run's
      // schedule, so only the weights are taken (strictly, minus the deprecated buffers).
      loadStateDict(trainer.model, officialModelArrays(resumeFile.arrays));
      log(`initialised the model from ${resume} (weights only: a fresh optimizer and schedule start at step 0)`);
    }
    const sched = trainer.schedule;
    log(
      `${gpu.adapter.isFallbackAdapter ? 'software adapter (slow): ' : ''}${config.model} @${inputSize}px, batch ${batchSize}, ` +
        `${steps} steps (~${(steps / stepsPerEpoch).toFixed(1)} epochs of ${stepsPerEpoch} steps), decoder width ${config.decoderWidth}, mask ${config.maskRatio}`,
    );
    log(
      `schedule${official ? ' (official recipe)' : ' (small-scale defaults; --official for the paper recipe)'}: ${describeSchedule(sched)}`,
    );
    startedAt = performance.now();
    const { state, step } = await supervisor.run().catch((err: unknown) => {
      // Out of GPU memory: say so, with the largest batch that fits by the estimate.
      if (err instanceof GpuOutOfMemoryError) throw new Error(outOfMemoryAdvice(config, gpu.limits, err.message));
      throw err;
    });
    log(`${quiet ? '' : '\n'}${state} at step ${step}; metrics in ${metricsPath}`);
    return state === 'finished' || state === 'stopped' ? 0 : 3;
  } finally {
    supervisor.dispose();
  }
}

/** Steps per epoch, by counting the samples once (local data; URL datasets need --steps). */
async function estimateStepsPerEpoch(specs: string[], shards: readonly Shard[], batch: number, needed: boolean): Promise<number> {
  if (specs.some(isUrl)) {
    if (needed) throw new Error('--epochs / --warmup-epochs need the dataset size: for URL datasets give --steps and --warmup-steps');
    return 1;
  }
  return Math.max(1, Math.ceil((await countSamples(shards)) / batch));
}
