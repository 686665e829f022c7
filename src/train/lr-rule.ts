/**
 * The small-scale learning-rate rule, shared by the CLI (`webspark pretrain`) and the browser
 * app so both start a run the same way. Platform-free.
 *
 * A peak lr of 0.1 whatever the batch (the base lr is derived from it: 3.2 at batch 8, 500x
 * the official 2e-4), warm-up over the first 10 % of the run. LAMB's trust ratio bounds each
 * layer's step to ~lr of its norm, so 0.1 moves the weights visibly in tens of steps.
 * Measured on ResNet-18 @64 px, batch 8, decoder 128, the bundled shard, 60 steps: the loss
 * went from 1.00 to 0.86 (mean of the last 10 steps), noisily; peak 1e-2 (base 0.32) reached
 * ~0.97 after 15 steps. A fixed peak (not base x batch / 256) keeps a large GPU batch from
 * getting an lr of several units. The official recipe (base 2e-4 x batch/256, 40 warm-up
 * epochs, made for batch 4096 and 1600 epochs) barely moves the weights in a short run.
 */
import { lrAt, peakLr, wdAt, type ScheduleConfig } from '../optim/schedule.ts';

export const SMALL_SCALE = { peakLr: 0.1, warmupFraction: 0.1 } as const;

/** The base lr (the schedule's `baseLr`, scaled by batch/256) that gives the small-scale peak. */
export function smallScaleBaseLr(batchSize: number): number {
  return (SMALL_SCALE.peakLr * 256) / batchSize;
}

/** Warm-up steps of the small-scale rule: 10 % of the run, at least 1. */
export function smallScaleWarmup(totalSteps: number): number {
  return Math.max(1, Math.round(totalSteps * SMALL_SCALE.warmupFraction));
}

/** One line saying what the schedule does (the CLI prints it, the app's set-up panel shows it). */
export function describeSchedule(s: ScheduleConfig): string {
  const last = Math.max(0, s.totalIters - 1);
  return (
    `peak lr ${peakLr(s.baseLr, s.batchSize).toExponential(3)} (base ${+s.baseLr.toPrecision(6)} x ${s.batchSize}/256), ` +
    `warm-up ${+s.warmupIters.toFixed(2)} steps from ${lrAt(s, 0).toExponential(2)}, cosine to ${lrAt(s, last).toExponential(2)}; ` +
    `weight decay ${+wdAt(s, 0).toFixed(3)} -> ${wdAt(s, last).toFixed(3)}`
  );
}
