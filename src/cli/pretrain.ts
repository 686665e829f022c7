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
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
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
import type { Context } from '../tensor/context.ts';
import { MODEL_NAMES, TINY_MODEL, modelFields, modelNameOf } from '../models/zoo.ts';
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
import { contextFor, parsePrecision, precisionLine, type PrecisionChoice } from '../train/precision-choice.ts';
import { PRECISION_OPTION } from './precision-option.ts';

export const DEFAULT_DATA = fileURLToPath(new URL('../../public/data/sample-000000.tar', import.meta.url));

const OPTIONS = defineOptions({
  data: {
    type: 'string', value: 'SPEC', defaultText: 'bundled `public/data/sample-000000.tar`',
    help: 'comma-separated shards, brace patterns (`train-{0000..0099}.tar`), folders (ImageFolder or flat), `.tar.gz`, `.parquet`, or `https://` URL patterns',
  },
  token: { type: 'string', value: 'TOKEN', help: '`Authorization: Bearer` token for gated URLs (kept in memory only)' },
  model: {
    type: 'string', value: 'NAME', defaultText: "`resnet18`, or the `--resume` file's model",
    help: `the architecture: ${MODEL_NAMES.join(', ')}, or \`${TINY_MODEL}\` (ResNet-18's layout a few channels wide, for a first look on a software adapter)`,
  },
  'input-size': {
    type: 'integer', min: 32, max: 1024, defaultText: "64 (224 with `--official`), or the `--resume` file's",
    help: 'image side in pixels, a multiple of 32 (the patch size)',
  },
  'batch-size': { type: 'integer', min: 1, max: 4096, defaultText: "8, or the `--resume` run's", help: 'images per step' },
  steps: { type: 'integer', min: 1, defaultText: "from `--epochs`, or the `--resume` run's", help: 'training steps (URL datasets need it: their size is unknown)' },
  epochs: { type: 'number', min: 0.01, defaultText: '20 (1600 with `--official`)', help: 'passes over the data, when `--steps` is not given' },
  'mask-ratio': { type: 'number', min: 0, max: 0.99, defaultText: "0.6, or the `--resume` run's", help: 'each image keeps `round(h*w*(1-ratio))` patches, as the official code' },
  'base-lr': {
    type: 'number', min: 0, defaultText: "25.6 / batch, i.e. peak lr 0.1 at any batch (2e-4 with `--official`), or the `--resume` run's",
    help: 'peak lr = base lr x batch / 256',
  },
  'warmup-epochs': {
    type: 'number', min: 0, defaultText: "10 % of the run (40 with `--official`), or the `--resume` run's",
    help: 'linear warm-up from 0.005 x peak, then cosine to 0.001 x peak',
  },
  'decoder-width': {
    type: 'integer', min: 32, max: 4096, defaultText: "128 (768 with `--official`), or the `--resume` file's",
    help: 'LightDecoder width; halves five times',
  },
  optimizer: { type: 'string', value: 'NAME', defaultText: "`lamb`, or the `--resume` run's", help: '`lamb` (timm 0.5.4 semantics, grad-norm clip 5) or `adamw`' },
  out: { type: 'string', value: 'DIR', default: 'runs/pretrain', help: '`metrics.jsonl` (one object per step), checkpoints, `reconstruction-*.png`' },
  resume: {
    type: 'string', value: 'FILE',
    help: 'continue a run exactly (weights, optimizer, data position, random state; its model and schedule are the defaults of the options above and below), or start from an official checkpoint\'s weights',
  },
  seed: { type: 'integer', min: 0, defaultText: "0, or the `--resume` run's", help: 'seeds the weights, the data order, the masks and augmentation' },
  official: { type: 'flag', help: "the paper's recipe: base lr 2e-4, 40 warm-up epochs, 1600 epochs, input 224, decoder 768" },
  'checkpoint-every': { type: 'integer', min: 0, defaultText: "a fifth of the run, at least 10, or the `--resume` run's", help: 'steps between checkpoints (0: none)' },
  'preview-every': { type: 'integer', min: 0, defaultText: "a fifth of the run, at least 10, or the `--resume` run's", help: 'steps between reconstruction PNGs (0: none)' },
  'shuffle-buffer': { type: 'integer', min: 0, default: 256, help: 'samples held back to shuffle the stream (0: shard order)' },
  quiet: { type: 'flag', help: 'a progress line every 10 steps instead of a live bar (the default when stdout is not a terminal)' },
  autotune: {
    type: 'flag',
    help: 'after step 0, tune the conv kernels for this adapter (cached in `~/.cache/webspark/autotune.json`; see docs/performance.md)',
  },
  precision: PRECISION_OPTION,
});

export const command: Command<typeof OPTIONS> = {
  name: 'pretrain',
  summary: 'SparK pre-training (default: resnet18 at 64 px on the bundled sample shard)',
  options: OPTIONS,
  run: pretrain,
};

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

export async function pretrain(args: Args<typeof OPTIONS>): Promise<number> {
  const official = args.get('official');
  const out = args.get('out');
  const data = args.get('data', DEFAULT_DATA);
  // --resume takes a webspark checkpoint (continues exactly) or an official SparK checkpoint
  // (.pth or safetensors with official keys: weights only, a fresh run from them). What the
  // file says about the model is the default for --model / --input-size / --decoder-width.
  const resume = args.get('resume');
  const resumeFile = resume ? readWeightFile(new Uint8Array(readFileSync(resume)), resume) : null;
  // What the file says about the model; a webspark checkpoint also holds the run's whole
  // training set-up: continuing exactly means its batch size, steps, schedule and seed unless
  // an option says otherwise.
  const fromFile: Partial<TrainConfig> = resumeFile ? { ...savedTrainConfig(resumeFile.metadata), ...resumeFile.config } : {};
  const model = args.get('model', fromFile.model === undefined ? 'resnet18' : modelNameOf(fromFile as TrainConfig));
  if (model !== TINY_MODEL && !MODEL_NAMES.includes(model as never)) {
    throw new Error(`--model: unknown model '${model}' (known: ${MODEL_NAMES.join(', ')}, ${TINY_MODEL})`);
  }
  const inputSize = args.get('input-size', fromFile.inputSize ?? (official ? 224 : 64));
  const token = args.get('token');
  const dataset = await nodeShards(data.split(','), token ? { http: { headers: { Authorization: `Bearer ${token}` } } } : {});
  const batch = args.get('batch-size', fromFile.batchSize ?? 8);
  const stepsPerEpoch = await estimateStepsPerEpoch(data.split(','), dataset.shards, batch, givenSteps(args, fromFile) === undefined || args.has('warmup-epochs'));
  const config = trainConfigOf(args, fromFile, model, inputSize, batch, stepsPerEpoch);
  parsePrecision(args.get('precision')); // a bad name fails before any device work
  let chosen: PrecisionChoice | null = null;
  const { batchSize, totalSteps: steps } = config;

  mkdirSync(out, { recursive: true });
  const store = new NodeCheckpointStore(out);
  const quiet = args.get('quiet') || !process.stdout.isTTY;
  const metricsPath = join(out, 'metrics.jsonl');
  const log = (line: string) => process.stdout.write(`${line}\n`);
  let startedAt = performance.now();
  // The supervisor owns Gpu + Context + Trainer: on a lost device it builds new ones and
  // resumes from the newest checkpoint in `out`; on a full disk it pauses (src/train/supervisor.ts).
  const supervisor = new Supervisor({
    build: async () => {
      const gpu = await createNodeGpu();
      // Chosen on the first device; a rebuilt one (lost device) keeps the run's precision.
      const { ctx, choice } = contextFor(gpu, chosen?.precision ?? args.get('precision'));
      chosen ??= choice;
      config.precision = choice.precision;
      return { trainer: makeTrainer(ctx), dispose: () => (ctx.dispose(), gpu.destroy()) };
    },
    latest: async () => {
      const c = store.latest();
      return c ? readWeightFile(new Uint8Array(readFileSync(c.path)), c.path) : null;
    },
    notice: (msg) => log(`${quiet ? '' : '\n'}${msg}`),
    // f16 by default only: a run that asked for f16 pauses with the message instead.
    fallbackToF32: () => {
      if (chosen?.precision !== 'f16' || args.has('precision')) return false;
      chosen = { precision: 'f32', reason: "f16's range was exceeded" };
      return true;
    },
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
            shuffleBuffer: args.get('shuffle-buffer'),
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
      args.get('autotune') ? { autotune: { store: new NodeTuneStore(undefined, log), log } } : {},
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
      `${gpu.adapter.isFallbackAdapter ? 'software adapter (slow): ' : ''}${modelNameOf(config)} @${inputSize}px, batch ${batchSize}, ` +
        `${steps} steps (~${(steps / stepsPerEpoch).toFixed(1)} epochs of ${stepsPerEpoch} steps), decoder width ${config.decoderWidth}, mask ${config.maskRatio}`,
    );
    log(precisionLine(chosen!));
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

/** The training set-up a webspark checkpoint was written with (`train` in its run record); empty for other files. */
function savedTrainConfig(metadata: Record<string, string>): Partial<TrainConfig> {
  const run = metadata['webspark.run'] ? (JSON.parse(metadata['webspark.run']) as { train?: Partial<TrainConfig> }) : {};
  return run.train ?? {};
}

/** The steps asked for: `--steps`, else (without `--epochs`) the `--resume` run's; undefined: from the epochs. */
function givenSteps(args: Args<typeof OPTIONS>, fromFile: Partial<TrainConfig>): number | undefined {
  return args.get('steps') ?? (args.has('epochs') ? undefined : fromFile.totalSteps);
}

/**
 * The run's configuration from the options, then the `--resume` file's (`fromFile`: its model
 * settings, and a webspark run's training set-up), then the defaults and the epoch length.
 */
function trainConfigOf(
  args: Args<typeof OPTIONS>, fromFile: Partial<TrainConfig>, model: string, inputSize: number, batchSize: number, stepsPerEpoch: number,
): TrainConfig {
  const official = args.get('official');
  const steps = givenSteps(args, fromFile) ?? Math.max(1, Math.round(args.get('epochs', official ? OFFICIAL_SCHEDULE.epochs : 20) * stepsPerEpoch));
  const warmupEpochs = args.get('warmup-epochs');
  const warmupSteps = warmupEpochs !== undefined
    ? warmupEpochs * stepsPerEpoch
    : official
      ? OFFICIAL_SCHEDULE.warmupEpochs * stepsPerEpoch
      : (fromFile.warmupSteps ?? smallScaleWarmup(steps));
  const config: TrainConfig = {
    ...modelFields(model),
    inputSize,
    decoderWidth: args.get('decoder-width', fromFile.decoderWidth ?? (official ? 768 : 128)),
    maskRatio: args.get('mask-ratio', fromFile.maskRatio ?? 0.6),
    batchSize,
    totalSteps: steps,
    baseLr: args.get('base-lr', official ? OFFICIAL_SCHEDULE.baseLr : (fromFile.baseLr ?? smallScaleBaseLr(batchSize))),
    warmupSteps,
    wd: OFFICIAL_SCHEDULE.wd,
    wdEnd: OFFICIAL_SCHEDULE.wdEnd,
    optimizer: args.get('optimizer', fromFile.optimizer ?? 'lamb') as TrainConfig['optimizer'],
    seed: args.get('seed', fromFile.seed ?? 0),
    checkpointEvery: args.get('checkpoint-every', fromFile.checkpointEvery ?? Math.max(10, Math.round(steps / 5))),
    previewEvery: args.get('preview-every', fromFile.previewEvery ?? Math.max(10, Math.round(steps / 5))),
    maxInFlight: 2,
    maxConsecutiveSkips: 5,
  };
  validateTrainConfig(config);
  return config;
}

/** Steps per epoch, by counting the samples once (local data; URL datasets need --steps). */
async function estimateStepsPerEpoch(specs: string[], shards: readonly Shard[], batch: number, needed: boolean): Promise<number> {
  if (specs.some(isUrl)) {
    if (needed) throw new Error('--epochs / --warmup-epochs need the dataset size: for URL datasets give --steps (the warm-up is then 10 % of it)');
    return 1;
  }
  return Math.max(1, Math.ceil((await countSamples(shards)) / batch));
}
