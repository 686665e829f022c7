/**
 * `webspark bench train --memory-only`: the memory of the SparK step `bench train` would run,
 * without running it. The Trainer records the step (recording runs nothing, src/gpu/recording.ts)
 * and gives its buffers memory by liveness exactly as a replayed step holds them, so the
 * figures are those `bench train` reports as `activationBytes` and `stepLivePeakBytes`, at any
 * shape in seconds: on a software adapter, a ResNet-50 step at 224 px takes many minutes to
 * run but a few seconds to plan. Nothing is timed.
 */
import { Context } from '../src/tensor/context.ts';
import type { Precision } from '../src/tensor/precision.ts';
import { Trainer } from '../src/train/trainer.ts';
import { fixedBatch, trainBenchConfig, type TrainBenchOptions } from './train.ts';

export interface TrainMemory {
  model: string;
  inputSize: number;
  batch: number;
  precision: Precision;
  /** The step's own buffers (activations, their gradients, the step's scratch), as `bench train`'s `activationBytes`. */
  activationBytes: number;
  /** The most bytes live at one of the step's commands (a lower bound for any assignment). */
  stepLivePeakBytes: number;
  /** Weights, gradients and optimizer state (LAMB moments, loss scale) plus the step's buffers: the pool's peak. */
  peakBytes: number;
}

export async function planTrainMemory(base: Context, options: TrainBenchOptions = {}): Promise<TrainMemory> {
  const { config, name } = trainBenchConfig(base, options);
  const gpu = base.gpu;
  await gpu.sync();
  const ctx = new Context(gpu, { precision: base.precision });
  const before = gpu.pool.liveBytes;
  gpu.pool.resetPeak();
  const trainer = new Trainer(ctx, config, { loader: () => { throw new Error('planning reads no data'); }, saveCheckpoint: async () => 'not saved (bench)' });
  try {
    const step = trainer.planStep(fixedBatch(config.batchSize, config.inputSize));
    return {
      model: name,
      inputSize: config.inputSize,
      batch: config.batchSize,
      precision: ctx.precision,
      activationBytes: step.bytes,
      stepLivePeakBytes: step.livePeakBytes,
      peakBytes: gpu.pool.peakBytes - before,
    };
  } finally {
    trainer.dispose();
    ctx.dispose();
  }
}

export function formatTrainMemory(m: TrainMemory): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return [
    `SparK step memory, planned without running it (${m.model} B${m.batch} ${m.inputSize}px ${m.precision}):`,
    `  activation memory (the recorded step's own buffers) ${mib(m.activationBytes)} (liveness-assigned; ${mib(m.stepLivePeakBytes)} live at its busiest command)`,
    `  peak with weights, gradients and optimizer state ${mib(m.peakBytes)}`,
  ].join('\n');
}
