/**
 * `webspark bench train`: one SparK pre-training step as the Trainer records it (zero grads,
 * a fresh per-image mask, forward, masked loss, backward, LAMB on the GPU), on a fixed image
 * batch already on the GPU (data loading is `bench data`'s subject). Steps are recorded back
 * to back and fenced every `inFlight` steps with `onSubmittedWorkDone`, as the Trainer keeps
 * at most a couple of steps queued; ms/step is the median over fenced groups after warm-up.
 *
 * Also per step: queue submits and readbacks (Gpu.stats deltas). Like the Trainer, each step
 * reads the loss and LAMB's status asynchronously (two mapAsync copies, each read submits
 * what was recorded before it); nothing waits on them inside the step, so synchronous
 * readbacks are zero by construction and the target checks submits/step. And
 * the pool's peak bytes over the whole step including weights, gradients and LAMB moments
 * (above what was live before the model was made).
 *
 * Defaults: ResNet-50 at 224 px, batch 32 on hardware; on a software adapter ResNet-18's
 * depth at a quarter of its width (stem 16, planes 16/32/64/128), decoder width 128, 64 px,
 * batch 2 (stated in the shape column): SwiftShader runs a full ResNet-18 encoder pass at
 * 128 px in ~50 s on this machine's shared cores.
 */
import type { Context } from '../src/tensor/context.ts';
import { SiteLayout } from '../src/tensor/layout.ts';
import { createSparK } from '../src/models/registry.ts';
import { Lamb } from '../src/optim/lamb.ts';
import { betasFor } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { record, type BenchRecord } from './harness.ts';

export interface TrainBenchOptions {
  model?: string;
  inputSize?: number;
  batch?: number;
  steps?: number;
}

export interface TrainSummary {
  model: string;
  inputSize: number;
  batch: number;
  msPerStep: number;
  imagesPerSecond: number;
  submitsPerStep: number;
  dispatchesPerStep: number;
  readbacksPerStep: number;
  peakBytes: number;
  /** Synchronous readbacks are zero by construction: the step awaits nothing. */
  syncReadbacksPerStep: 0;
  targets: { submitsPerStep: number };
  met: { submits: boolean };
}

export async function benchTrain(ctx: Context, options: TrainBenchOptions = {}): Promise<{ records: BenchRecord[]; summary: TrainSummary }> {
  const soft = ctx.gpu.adapter.isFallbackAdapter;
  const model = options.model ?? (soft ? 'resnet18' : 'resnet50');
  const size = options.inputSize ?? (soft ? 64 : 224);
  const B = options.batch ?? (soft ? 2 : 32);
  const groups = options.steps ?? (soft ? 3 : 5);
  const inFlight = 2;
  const gpu = ctx.gpu;

  // Tensors other suites left alive in this context are not the step's.
  await gpu.sync();
  const before = gpu.pool.liveBytes;
  const narrow = soft && options.model === undefined;
  const spark = createSparK(ctx, new Rng(1), {
    model,
    inputSize: size,
    ...(narrow ? { resnet: { block: 'basic', layers: [2, 2, 2, 2], stemWidth: 16, planes: [16, 32, 64, 128] }, decoderWidth: 128 } : {}),
  });
  spark.train();
  const lamb = new Lamb(ctx, spark.namedParameters(), betasFor(model));
  const rng = new Rng(2);
  const maskRng = new Rng(3);
  const layout = SiteLayout.dense(B, size, size);
  const image = ctx.fromArray(Float32Array.from({ length: layout.rows * 3 }, () => rng.uniform(-2, 2)), [layout.rows, 3], layout);
  const params = spark.parameters();

  // As Trainer.record: the loss and LAMB's status are read asynchronously behind the step.
  const pending: Promise<unknown>[] = [];
  const step = () => {
    pending.push(
      ctx.tidy(() => {
        ctx.zeroGrad(params);
        const out = spark.forward(image, spark.randomMask(B, maskRng));
        ctx.backward(out.loss);
        return out.loss.read();
      }),
    );
    // lr / wd of a mid-run step; their values do not change the work.
    lamb.step(1e-4, 0.04);
    pending.push(lamb.status());
  };

  // Warm-up: pipelines compiled, gradient and moment buffers allocated, pool populated.
  step();
  await gpu.sync();
  await Promise.all(pending.splice(0));
  const pool = gpu.pool;
  pool.resetPeak();
  const s0 = { ...gpu.stats };
  const times: number[] = [];
  for (let g = 0; g < groups; g++) {
    const t0 = performance.now();
    for (let i = 0; i < inFlight; i++) step();
    await gpu.sync();
    await Promise.all(pending.splice(0));
    times.push((performance.now() - t0) / inFlight);
  }
  const steps = groups * inFlight;
  // Gpu.sync() itself submits once per group; it stands in for the Trainer's read fence.
  const submitsPerStep = (gpu.stats.submits - s0.submits) / steps;
  const readbacksPerStep = (gpu.stats.readbacks - s0.readbacks) / steps;
  const dispatchesPerStep = (gpu.stats.dispatches - s0.dispatches) / steps;
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  const peakBytes = pool.peakBytes - before;
  const name = narrow ? `${model}/4, decoder 128` : model;
  const shape = `${name} B${B} ${size}px${soft ? ' (scaled down)' : ''}`;
  const targets = { submitsPerStep: 4 };
  const summary: TrainSummary = {
    model: name,
    inputSize: size,
    batch: B,
    msPerStep: ms,
    imagesPerSecond: (1000 * B) / ms,
    submitsPerStep,
    dispatchesPerStep,
    readbacksPerStep,
    peakBytes,
    syncReadbacksPerStep: 0,
    targets,
    met: { submits: submitsPerStep <= targets.submitsPerStep },
  };
  return { records: [record('train', 'SparK step (fwd+bwd+LAMB)', 'webspark', shape, ms, null, peakBytes)], summary };
}

export function formatTrain(s: TrainSummary): string {
  return [
    `train ${s.model} B${s.batch} ${s.inputSize}px: ${s.msPerStep.toFixed(1)} ms/step, ${s.imagesPerSecond.toFixed(1)} images/s`,
    `  queue submits/step ${s.submitsPerStep.toFixed(2)} (target <= ${s.targets.submitsPerStep}: ${s.met.submits ? 'met' : 'NOT met'}), dispatches/step ${s.dispatchesPerStep.toFixed(0)}`,
    `  asynchronous readbacks/step ${s.readbacksPerStep.toFixed(2)} (loss + LAMB status; synchronous: 0, nothing in the step awaits them)`,
    `  peak GPU pool bytes ${(s.peakBytes / 2 ** 20).toFixed(1)} MiB (weights, grads, LAMB moments, activations)`,
  ].join('\n');
}
