/**
 * How long a fine-tuning run is, from the number of kept (label-fraction) images: the batch
 * (at most the images kept), whole batches per epoch (the last incomplete one is dropped), the
 * total steps (`steps`, else epochs x steps per epoch) and the linear warm-up (one epoch by
 * default, at most a tenth of the run, and always short of its last step). `webspark finetune`
 * and the app's Fine-tune panel both plan their runs with it.
 */
import type { FinetuneOptions } from './finetune.ts';

export interface RunLength {
  /** Either steps, or epochs over the kept images. */
  steps?: number;
  epochs: number;
  warmupEpochs?: number;
}

export interface RunPlan {
  batchSize: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
}

export function planRun(kept: number, batchSize: number, length: RunLength): RunPlan {
  const batch = Math.min(batchSize, kept);
  const stepsPerEpoch = Math.max(1, Math.floor(kept / batch));
  const totalSteps = length.steps ?? Math.max(1, Math.round(length.epochs * stepsPerEpoch));
  const warmup = length.warmupEpochs !== undefined ? length.warmupEpochs * stepsPerEpoch : Math.min(stepsPerEpoch, Math.floor(totalSteps / 10));
  return { batchSize: batch, stepsPerEpoch, totalSteps, warmupSteps: Math.min(totalSteps - 1, warmup) };
}

/** The recipe's options for a planned run (the batch stays as asked: the Finetuner caps it). */
export function optionsFor(recipe: Omit<FinetuneOptions, 'totalSteps' | 'warmupSteps'>, plan: RunPlan): FinetuneOptions {
  return { ...recipe, totalSteps: plan.totalSteps, warmupSteps: plan.warmupSteps };
}
