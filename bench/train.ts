/**
 * `webspark bench train`: the SparK pre-training step as the Trainer runs it (zero grads, a
 * fresh per-image mask, forward, masked loss, backward, LAMB, all recorded once and replayed),
 * driven through the real `Trainer` so the figures are the product's, not a copy of it.
 *
 * Three runs side by side, each in its own Context on the same Gpu:
 * 1. replayed steps on a fixed batch (data loading out of the picture): ms/step (median of
 *    the Trainer's own step times after the recorded step), queue submits, dispatches and
 *    readbacks per step (Gpu.stats deltas), the pool's peak bytes over the run (weights,
 *    gradients, LAMB moments, activations, the recording's working set);
 * 2. the same with every step run eagerly (TrainerOptions.replay false): what replaying
 *    saves on the CPU, and what liveness-assigned buffers save in memory;
 * 3. replayed steps fed by a real loader (the CLI passes one over the bundled shard): the
 *    share of step time spent waiting for data.
 * Synchronous readbacks are zero by construction: the step awaits nothing; the one readback
 * per step (loss and optimizer status together) is asynchronous.
 *
 * Defaults: ResNet-50 at 224 px, batch 32 on hardware; on a software adapter ResNet-18's
 * depth at a quarter of its width (stem 16, planes 16/32/64/128), decoder width 128, 64 px,
 * batch 2 (stated in the shape column): SwiftShader runs a full ResNet-18 encoder pass at
 * 128 px in ~50 s on a 2-core machine.
 */
import { Context } from '../src/tensor/context.ts';
import type { Precision } from '../src/tensor/precision.ts';
import type { SparKConfig } from '../src/models/registry.ts';
import { Trainer, type BatchSource, type StepMetrics, type TrainConfig } from '../src/train/trainer.ts';
import type { Batch } from '../src/data/loader.ts';
import { newMetrics } from '../src/data/types.ts';
import { Rng } from '../src/util/rng.ts';
import { median, record, type BenchRecord } from './harness.ts';
import type { ReplayProfile } from '../src/gpu/gpu.ts';
import { formatProfile, noTimestampsMessage, profileInput, profileRecording, summarizeProfile, type InputProfile, type ProfileOptions, type StepProfile } from './train-profile.ts';

export interface TrainBenchOptions {
  model?: string;
  inputSize?: number;
  batch?: number;
  /** Measured (replayed) steps per run. */
  steps?: number;
  /** A real loader for the data-wait run (the CLI gives the bundled shard's). */
  dataLoader?: (config: TrainConfig) => BatchSource;
  /** Also profile the replayed step by kernel family (bench/train-profile.ts; needs 'timestamp-query'). */
  profile?: ProfileOptions;
}

export interface TrainSummary {
  model: string;
  inputSize: number;
  batch: number;
  msPerStep: number;
  imagesPerSecond: number;
  /** ms/step when every step runs eagerly (TrainerOptions.replay false) instead of replayed. */
  msPerStepEager: number;
  /** CPU ms to encode a step: replaying the recording, and running the step's code eagerly. */
  encodeMs: number;
  encodeMsEager: number;
  submitsPerStep: number;
  dispatchesPerStep: number;
  readbacksPerStep: number;
  /** Storage of activations and their gradients in this run (the Context's precision). */
  precision: Precision;
  peakBytes: number;
  /**
   * The replayed step's own buffers (liveness-assigned: activations, their gradients and the
   * step's scratch; not weights, gradients or optimizer state) and its live-bytes lower bound.
   */
  activationBytes: number | null;
  stepLivePeakBytes: number | null;
  /** Peak pool bytes when every step runs eagerly (scope-long lifetimes). */
  peakBytesEager: number;
  /** Synchronous readbacks are zero by construction: the step awaits nothing. */
  syncReadbacksPerStep: 0;
  /** Share of step time waiting for the real loader (null without one). */
  dataWaitShare: number | null;
  targets: { submitsPerStep: number; dataWaitShare: number };
  met: { submits: boolean; dataWait: boolean | null };
  /** Where the replayed step's GPU time goes (with `profile`). */
  profile?: StepProfile;
}

/**
 * The same batch every time (random pixels, no flips), delivered without waiting. The Trainer
 * asks for a batch right before it records each step, so `marks` gets Gpu.stats at each
 * step's start: their differences are exactly one step's submits, dispatches and readbacks.
 */
function fixedBatches(batch: number, size: number, stats: () => GpuCounts, marks: GpuCounts[] = []): BatchSource {
  const b = fixedBatch(batch, size);
  const next = async () => {
    marks.push(stats());
    return { ...b };
  };
  return { next, close: () => {}, metrics: newMetrics() };
}

/** The bench's batch: seeded random pixels at `size`, no flips. */
export function fixedBatch(batch: number, size: number): Batch {
  const rng = new Rng(2);
  return {
    batch,
    size,
    channels: 3,
    pixels: Uint8Array.from({ length: batch * size * size * 3 }, () => rng.int(0, 256)),
    flips: new Uint8Array(batch),
    labels: new Int32Array(batch).fill(-1),
    keys: Array.from({ length: batch }, (_, i) => `bench-${i}`),
    boxes: [],
    cursor: {
      version: 1, seed: 0, epoch: 0, shardIndex: 0, samplesConsumed: 0, read: 0, emitted: 0, rng: 0, buffer: [],
      refill: { shardIndex: 0, samplesConsumed: 0, read: 0 }, numShards: 1, bufferSize: 0,
    },
    epoch: 0,
    waitMs: 0,
  };
}

interface GpuCounts {
  submits: number;
  dispatches: number;
  readbacks: number;
}

interface RunResult {
  /** Metrics of the replayed steps (from step 2). */
  metrics: StepMetrics[];
  /** Per replayed step, from the fixed source's marks (null for a real loader). */
  perStep: GpuCounts | null;
  peakBytes: number;
  /** The kept recording's buffers, and the most bytes live at one of its commands. */
  activationBytes: number | null;
  stepLivePeakBytes: number | null;
  /** Profiled replays of the recorded step (when asked for). */
  profiled: { replays: ReplayProfile[]; input: InputProfile } | null;
}

async function run(base: Context, config: TrainConfig, source: 'fixed' | BatchSource, replay: boolean, profileReplays = 0): Promise<RunResult> {
  const gpu = base.gpu;
  await gpu.sync();
  const ctx = new Context(gpu, { precision: base.precision });
  const before = gpu.pool.liveBytes;
  gpu.pool.resetPeak();
  const metrics: StepMetrics[] = [];
  const marks: GpuCounts[] = [];
  const counts = () => ({ submits: gpu.stats.submits, dispatches: gpu.stats.dispatches, readbacks: gpu.stats.readbacks });
  const batches = source === 'fixed' ? fixedBatches(config.batchSize, config.inputSize, counts, marks) : source;
  const trainer = new Trainer(
    ctx,
    config,
    { loader: () => batches, saveCheckpoint: async () => 'not saved (bench)' },
    { metrics: (m) => void metrics.push(m) },
    { replay },
  );
  let recorded: Trainer['recordedStep'] = null;
  let profiled: RunResult['profiled'] = null;
  try {
    await trainer.train();
    recorded = trainer.recordedStep;
    if (profileReplays > 0 && recorded) {
      await gpu.sync();
      const replays = await profileRecording(gpu, recorded.recording, profileReplays);
      profiled = { replays, input: await profileInput(ctx, fixedBatch(config.batchSize, config.inputSize), profileReplays) };
    }
  } finally {
    trainer.dispose();
  }
  const peakBytes = gpu.pool.peakBytes - before;
  ctx.dispose();
  // Steps 0 (makes gradients) and 1 (recorded) are warm-up. marks[i]: the start of step i.
  let perStep: GpuCounts | null = null;
  if (marks.length >= 4) {
    const first = marks[2]!;
    const last = marks[marks.length - 1]!;
    const n = marks.length - 3;
    perStep = {
      submits: (last.submits - first.submits) / n,
      dispatches: (last.dispatches - first.dispatches) / n,
      readbacks: (last.readbacks - first.readbacks) / n,
    };
  }
  return { metrics: metrics.slice(2), perStep, peakBytes, activationBytes: recorded?.bytes ?? null, stepLivePeakBytes: recorded?.livePeakBytes ?? null, profiled };
}


/**
 * The benchmark's run: its model, size, batch and a TrainConfig. Defaults per adapter kind
 * (header); `name` says the narrowed model when the software default is used.
 */
export function trainBenchConfig(ctx: Context, options: TrainBenchOptions = {}): { config: TrainConfig; name: string; measured: number; soft: boolean } {
  const soft = ctx.gpu.adapter.isFallbackAdapter;
  const model = options.model ?? (soft ? 'resnet18' : 'resnet50');
  const size = options.inputSize ?? (soft ? 64 : 224);
  const B = options.batch ?? (soft ? 2 : 32);
  const measured = Math.max(2, options.steps ?? (soft ? 4 : 10));
  const narrow = soft && options.model === undefined;
  const spark: SparKConfig = {
    model,
    inputSize: size,
    ...(narrow ? { resnet: { block: 'basic', layers: [2, 2, 2, 2], stemWidth: 16, planes: [16, 32, 64, 128] }, decoderWidth: 128 } : {}),
  } as SparKConfig;
  const config: TrainConfig = {
    ...spark,
    batchSize: B,
    totalSteps: measured + 2,
    // A mid-run lr: the values do not change the work.
    baseLr: 2e-4,
    warmupSteps: 1,
    wd: 0.04,
    wdEnd: 0.2,
    optimizer: 'lamb',
    seed: 1,
    checkpointEvery: 0,
    previewEvery: 0,
    maxInFlight: 2,
    maxConsecutiveSkips: 1 << 30,
    precision: ctx.precision,
  };
  return { config, name: narrow ? `${model}/4, decoder 128` : model, measured, soft };
}

export async function benchTrain(ctx: Context, options: TrainBenchOptions = {}): Promise<{ records: BenchRecord[]; summary: TrainSummary }> {
  const { config, name, soft } = trainBenchConfig(ctx, options);
  const { batchSize: B, inputSize: size } = config;
  if (options.profile && !ctx.gpu.features.has('timestamp-query')) throw new Error(noTimestampsMessage());
  const replayed = await run(ctx, config, 'fixed', true, options.profile ? (options.profile.replays ?? 3) : 0);
  const eager = await run(ctx, config, 'fixed', false);
  const fed = options.dataLoader ? await run(ctx, config, options.dataLoader(config), true) : null;

  const perStep = replayed.perStep!;
  const ms = median(replayed.metrics.map((m) => m.stepMs));
  const encodeMs = median(replayed.metrics.map((m) => m.encodeMs));
  const encodeMsEager = median(eager.metrics.map((m) => m.encodeMs));
  const msEager = median(eager.metrics.map((m) => m.stepMs));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const dataWaitShare = fed ? sum(fed.metrics.map((m) => m.dataWaitMs)) / sum(fed.metrics.map((m) => m.stepMs)) : null;
  const shape = `${name} B${B} ${size}px ${ctx.precision}${soft ? ' (scaled down)' : ''}`;
  const targets = { submitsPerStep: 4, dataWaitShare: 0.05 };
  const summary: TrainSummary = {
    model: name,
    inputSize: size,
    batch: B,
    msPerStep: ms,
    imagesPerSecond: (1000 * B) / ms,
    msPerStepEager: msEager,
    encodeMs,
    encodeMsEager,
    submitsPerStep: perStep.submits,
    dispatchesPerStep: perStep.dispatches,
    readbacksPerStep: perStep.readbacks,
    precision: ctx.precision,
    peakBytes: replayed.peakBytes,
    activationBytes: replayed.activationBytes,
    stepLivePeakBytes: replayed.stepLivePeakBytes,
    peakBytesEager: eager.peakBytes,
    syncReadbacksPerStep: 0,
    dataWaitShare,
    targets,
    met: { submits: perStep.submits <= targets.submitsPerStep, dataWait: dataWaitShare === null ? null : dataWaitShare <= targets.dataWaitShare },
    ...(replayed.profiled ? { profile: summarizeProfile(replayed.profiled.replays, replayed.profiled.input, ms, options.profile) } : {}),
  };
  const records = [
    record('train', 'SparK step (fwd+bwd+LAMB), replayed', 'webspark', shape, ms, null, replayed.peakBytes),
    record('train', 'SparK step, eager (not recorded)', 'webspark', shape, msEager, null, eager.peakBytes),
  ];
  if (fed) records.push(record('train', 'SparK step, bundled shard loader', 'webspark', shape, median(fed.metrics.map((m) => m.stepMs)), null, fed.peakBytes));
  return { records, summary };
}

export function formatTrain(s: TrainSummary): string {
  const wait =
    s.dataWaitShare === null
      ? '  data wait: not measured (no loader given)'
      : `  data wait ${(100 * s.dataWaitShare).toFixed(1)} % of step time on the bundled shard (target <= ${100 * s.targets.dataWaitShare} %: ${s.met.dataWait ? 'met' : 'NOT met'})`;
  return [
    `train ${s.model} B${s.batch} ${s.inputSize}px ${s.precision}: ${s.msPerStep.toFixed(1)} ms/step replayed, ${s.imagesPerSecond.toFixed(1)} images/s`,
    `  CPU to encode a step: ${s.encodeMs.toFixed(1)} ms replayed, ${s.encodeMsEager.toFixed(1)} ms eager (${s.msPerStepEager.toFixed(1)} ms/step that way)`,
    `  queue submits/step ${s.submitsPerStep.toFixed(2)} (target <= ${s.targets.submitsPerStep}: ${s.met.submits ? 'met' : 'NOT met'}), dispatches/step ${s.dispatchesPerStep.toFixed(0)}`,
    `  asynchronous readbacks/step ${s.readbacksPerStep.toFixed(2)} (loss + LAMB status in one copy; synchronous: 0, nothing in the step awaits them)`,
    `  peak GPU pool bytes ${(s.peakBytes / 2 ** 20).toFixed(1)} MiB replayed, ${(s.peakBytesEager / 2 ** 20).toFixed(1)} MiB eager (weights, grads, LAMB moments, activations)`,
    `  activation memory (the recorded step's own buffers) ${((s.activationBytes ?? 0) / 2 ** 20).toFixed(1)} MiB (liveness-assigned; ${((s.stepLivePeakBytes ?? 0) / 2 ** 20).toFixed(1)} MiB live at its busiest command)`,
    wait,
    ...(s.profile ? ['', formatProfile(s.profile)] : []),
  ].join('\n');
}
