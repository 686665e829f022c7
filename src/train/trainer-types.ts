/**
 * The Trainer's configuration and the interfaces it is driven through (src/train/trainer.ts
 * re-exports them): what a run is, what it reports, where its data and checkpoints go.
 */
import type { SparKConfig } from '../models/registry.ts';
import { modelSpec } from '../models/zoo.ts';
import type { OptimizerKind } from '../optim/lamb.ts';
import type { LossScaleOptions } from '../optim/loss-scale.ts';
import type { Precision } from '../tensor/precision.ts';
import type { PatchMask } from '../tensor/layout.ts';
import type { DataLoader } from '../data/loader.ts';
import type { ResumeCursor } from '../data/order.ts';
import type { TuneOptions } from '../ops/autotune.ts';
import type { Preview, StepMetrics } from './step-report.ts';

export interface TrainConfig extends SparKConfig {
  batchSize: number;
  /** Total iterations of the run (the schedules span them). */
  totalSteps: number;
  baseLr: number;
  warmupSteps: number;
  wd: number;
  wdEnd: number;
  optimizer: OptimizerKind;
  seed: number;
  /** Steps between checkpoints (0: only at the end and on pause). */
  checkpointEvery: number;
  /** Steps between reconstruction previews (0: none). */
  previewEvery: number;
  maxInFlight: number;
  maxConsecutiveSkips: number;
  /** Storage of activations and their gradients: the trainer's Context's (a run given one it does not have is refused). */
  precision?: Precision;
  /**
   * Dynamic loss scaling (GradScaler's defaults unless options are given). Default: on in
   * f16, off in f32, whose range needs none (turned on there, it gives the unscaled numbers bit
   * for bit, barring underflow: the scale is a power of 2).
   */
  lossScale?: boolean | LossScaleOptions;
}

export interface TrainerEvents {
  metrics?(m: StepMetrics): void;
  preview?(p: Preview): void;
  checkpoint?(info: { step: number; where: string }): void;
  /** Warnings and state changes ('paused: ...'), for the log. */
  notice?(message: string): void;
}

/** What the trainer needs of a loader (DataLoader; a fixed batch in `bench train`). */
export type BatchSource = Pick<DataLoader, 'next' | 'close' | 'metrics'>;

export interface TrainerIO {
  /** A loader positioned after `cursor` (or at the start). */
  loader(cursor: ResumeCursor | null): BatchSource;
  /** Stores a checkpoint atomically; returns where. */
  saveCheckpoint(step: number, parts: Uint8Array[]): Promise<string>;
}

export type TrainerState = 'idle' | 'running' | 'paused' | 'stopped' | 'finished';

export interface TrainerOptions {
  /**
   * Record the step once and replay it (default true). False records every step anew, which
   * gives the same numbers (the replay test checks it bit for bit) at more CPU cost.
   */
  replay?: boolean;
  /**
   * Auto-tune the conv kernels (src/ops/autotune.ts): after step 0 has run, every conv shape
   * of the step is known; they (the step's, not other models' on the same Gpu) are tuned
   * (checked, timed, cached) before the step that is kept for replay is recorded, so it
   * records the chosen kernels. `true` = default options.
   */
  autotune?: boolean | TuneOptions;
  /** Tests only (the CLI and the app never set it): each step's mask instead of a random draw, to replay a reference run's. */
  masksForTest?: (step: number, batch: number) => PatchMask;
}

/** LAMB's beta2 as the official arg_util sets it: 0.95 for ResNets, 0.999 for ConvNeXt. */
export function betasFor(model: string): { beta2: number } {
  return { beta2: modelSpec(model).family === 'resnet' ? 0.95 : 0.999 };
}
