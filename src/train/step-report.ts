/**
 * A training step's report: the values the step copies into one small buffer behind its work
 * (read back asynchronously), and what the trainer makes of a skipped step.
 */
import type { StepStatus } from '../optim/lamb.ts';

/** The report buffer: [loss, clip divisor, skip flag, grad norm, applied steps, loss scale]. */
export const REPORT_VALUES = 6;
/** Byte offsets the step copies to: the optimizer's 4-value state, then the loss scale. */
export const REPORT_STATE_OFFSET = 4;
export const REPORT_SCALE_OFFSET = 20;

/** One step's figures (metrics.jsonl, the app's charts). */
export interface StepMetrics {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  weightDecay: number;
  gradNorm: number;
  skippedStep: boolean;
  imagesPerSec: number;
  /**
   * Milliseconds from the previous step's results arriving to this step's (the first step:
   * from the start of `train`): the pace the GPU actually sustains. (Timing the encoding of
   * steps instead would run ahead of the GPU by the steps in flight.)
   */
  stepMs: number;
  /** CPU milliseconds spent encoding the step (recording it, or replaying the recording). */
  encodeMs: number;
  dataWaitMs: number;
  skippedSamples: number;
  skippedShards: number;
  skippedSteps: number;
  /** The loss scale this step's backward used (1 without loss scaling). */
  lossScale: number;
}

export interface Preview {
  step: number;
  size: number;
  batch: number;
  /** Normalized channels-last images [batch*size*size*3]. */
  original: Float32Array;
  masked: Float32Array;
  reconstruction: Float32Array;
  composite: Float32Array;
}

export interface StepReport {
  loss: number;
  status: StepStatus;
  /** The loss scale the step's backward used (1 without loss scaling). */
  lossScale: number;
}

export function decodeReport(r: Float32Array, scaled: boolean): StepReport {
  return { loss: r[0]!, status: { gradNorm: r[3]!, skipped: r[2] !== 0, step: r[4]! }, lossScale: scaled ? r[5]! : 1 };
}

/** What a step's outcome asks of the trainer. */
export interface SkipVerdict {
  notice: string | null;
  /** Set when the run should pause. */
  pause: string | null;
  /**
   * The pause is f16's range: with f16 storage and loss scaling, gradients stayed non-finite at
   * a loss scale of 1 or less while the loss was finite, so no scale can help; an activation or
   * its gradient exceeds 65504 (f16's largest value). f32 storage trains on from the same weights.
   */
  f16Range?: boolean;
}

/** The largest finite f16 value. */
const F16_MAX = 65504;

/**
 * Counts skipped steps. A skip the loss scale explains (scaling on, finite loss, scale above 1:
 * the gradients overflowed and the scale has been lowered) is expected and does not count
 * towards the pause; any other (a non-finite loss, or gradients that overflow without scaling
 * or at a scale of 1 or less) does, and `maxConsecutive` of them in a row pause the run.
 * A scale that keeps backing off reaches 1 after log2(initial scale) steps, so a run whose
 * gradients stay non-finite still pauses.
 */
export class SkipWatch {
  consecutive = 0;

  constructor(
    private readonly maxConsecutive: number,
    private readonly scaled: boolean,
    /** Activations are stored as f16 (a skip at scale <= 1 with a finite loss then means f16's range). */
    private readonly f16 = false,
  ) {}

  observe(step: number, r: StepReport): SkipVerdict {
    if (!r.status.skipped) {
      this.consecutive = 0;
      return { notice: null, pause: null };
    }
    if (this.scaled && Number.isFinite(r.loss) && r.lossScale > 1) {
      return { notice: `step ${step}: gradients overflowed at loss scale ${r.lossScale}; the update was skipped and the scale lowered`, pause: null };
    }
    this.consecutive++;
    const notice = `step ${step}: non-finite gradients (loss ${r.loss}); the update was skipped`;
    if (this.consecutive < this.maxConsecutive) return { notice, pause: null };
    if (this.f16 && this.scaled && Number.isFinite(r.loss)) {
      return {
        notice,
        f16Range: true,
        pause:
          `${this.consecutive} steps in a row had non-finite gradients at loss scale ${r.lossScale} with a finite loss: a value exceeds f16's range ` +
          `(${F16_MAX}), typically a convolution's output before its BatchNorm once the weights have grown. The weights are unchanged since the ` +
          'last good step and checkpoints are f32: continue in f32 (`--precision f32`, or precision f32 in the set-up).',
      };
    }
    return {
      notice,
      pause:
        `${this.consecutive} steps in a row had non-finite gradients. The weights are unchanged since the last good step; ` +
        'lower the learning rate (--base-lr) or check the data, then resume.',
    };
  }
}
