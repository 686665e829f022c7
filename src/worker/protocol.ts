/**
 * What the page and the training worker say to each other (through comlink): the set-up the
 * user chose, the events the worker reports, and how a set-up becomes a TrainConfig.
 */
import type { AdapterReport } from '../gpu/gpu.ts';
import type { DeviceStatus } from '../train/supervisor.ts';
import type { Preview, StepMetrics, TrainConfig, TrainerState } from '../train/trainer.ts';
import { OFFICIAL_SCHEDULE } from '../optim/schedule.ts';
import { smallScaleBaseLr, smallScaleWarmup } from '../train/lr-rule.ts';
import { modelFields, modelNameOf } from '../models/zoo.ts';
import type { Precision } from '../tensor/precision.ts';

/** Models the page offers; 'tiny' is a ResNet-18-shaped network a few channels wide. */
export const APP_MODELS = ['tiny', 'resnet18', 'resnet34', 'resnet50', 'convnext_atto'] as const;

export interface AppConfig {
  model: string;
  inputSize: number;
  batchSize: number;
  maskRatio: number;
  steps: number;
  /** 'auto': the small-scale rule shared with the CLI (src/train/lr-rule.ts), peak 0.1 at any batch. */
  baseLr: number | 'auto';
  decoderWidth: number;
  /** Steps between reconstruction previews. */
  previewEvery: number;
  /** Minutes between automatic checkpoints (0: only on pause, stop and the end). */
  autosaveMinutes: number;
  seed: number;
  /** Auto-tune the conv kernels for this GPU after step 0 (src/worker/tune-host.ts); default: on unless the adapter is a software one. */
  autotune?: boolean;
  /** Tune only this many conv shapes, the largest first (0: all; TuneOptions.maxKeys). */
  tuneShapes?: number;
  /** Storage of activations and their gradients; 'auto' (the default): f16 where the adapter can run it, else f32 (src/train/precision-choice.ts). */
  precision?: 'auto' | Precision;
}

/** The tuning set-up a run was started with, kept with the run (RunEntry.tuning) so a resumed run tunes the same way. */
export interface RunTuning {
  autotune: boolean;
  /** 0: every conv shape. */
  maxShapes: number;
}

export function runTuning(c: AppConfig): RunTuning {
  return { autotune: c.autotune === true, maxShapes: Math.max(0, Math.floor(c.tuneShapes ?? 0)) };
}

export const DEFAULT_APP_CONFIG: AppConfig = {
  model: 'resnet18',
  inputSize: 64,
  batchSize: 4,
  maskRatio: 0.6,
  steps: 200,
  baseLr: 'auto',
  decoderWidth: 64,
  previewEvery: 10,
  autosaveMinutes: 5,
  seed: 0,
  autotune: true,
  tuneShapes: 0,
  precision: 'auto',
};

export function toTrainConfig(c: AppConfig): TrainConfig {
  return {
    ...modelFields(c.model),
    inputSize: c.inputSize,
    decoderWidth: c.decoderWidth,
    maskRatio: c.maskRatio,
    batchSize: c.batchSize,
    totalSteps: c.steps,
    baseLr: c.baseLr === 'auto' ? smallScaleBaseLr(c.batchSize) : c.baseLr,
    // The CLI's small-scale rule: warm-up over the first 10 % of the run.
    warmupSteps: smallScaleWarmup(c.steps),
    wd: OFFICIAL_SCHEDULE.wd,
    wdEnd: OFFICIAL_SCHEDULE.wdEnd,
    optimizer: 'lamb',
    seed: c.seed,
    checkpointEvery: 0,
    previewEvery: c.previewEvery,
    maxInFlight: 2,
    maxConsecutiveSkips: 5,
    // Unset ('auto'): the worker chooses by the adapter when it builds the run, and records it.
    ...(c.precision && c.precision !== 'auto' ? { precision: c.precision } : {}),
  };
}

/** The set-up a stored run was started with (for showing it again after a reload). */
export function fromTrainConfig(c: TrainConfig, autosaveMinutes: number): AppConfig {
  return {
    model: modelNameOf(c),
    inputSize: c.inputSize,
    batchSize: c.batchSize,
    maskRatio: c.maskRatio ?? 0.6,
    steps: c.totalSteps,
    baseLr: c.baseLr,
    decoderWidth: c.decoderWidth ?? 768,
    previewEvery: c.previewEvery,
    autosaveMinutes,
    seed: c.seed,
    precision: c.precision ?? 'auto',
  };
}

/**
 * Where the images come from: shard URLs (the bundled shard is one; a pattern like
 * `https://host/train-{000000..000099}.tar` with an optional bearer token), or files the user
 * picked (shard files, or the images of a folder). `label` names it in the run's record; the
 * token is never stored.
 */
export type DataSource =
  | { kind: 'url'; pattern: string; token?: string; label: string }
  | { kind: 'files'; files: File[]; label: string };

export type HostEvent =
  | { type: 'metrics'; metrics: StepMetrics }
  | { type: 'preview'; preview: Preview }
  | { type: 'checkpoint'; step: number; file: string }
  | { type: 'notice'; message: string }
  /** Kernel tuning in progress: `done` of `total` conv shapes checked (and timed). */
  | { type: 'tuning'; done: number; total: number }
  /**
   * The run's state. `failure`: why a run ended that was not asked to (the page offers to resume
   * it); `pausedFor`: a pause the run took by itself (the quota is full).
   */
  | { type: 'state'; state: TrainerState; step: number; totalSteps: number; runId: string; failure?: RunFailure; pausedFor?: 'storage-full' }
  /** The GPU device was lost, a new one is awaited or built, the run resumed or gave up (the status line). */
  | { type: 'device'; status: DeviceStatus };

/** Why a run ended by itself: the device was lost too often, the GPU ran out of memory, anything else. */
export interface RunFailure {
  kind: 'device-unstable' | 'out-of-memory' | 'error';
  message: string;
}

/** What the set-up panel shows about a set-up before it runs (TrainerHost.plan). */
export interface SetupPlan {
  /** Bytes, src/train/memory-estimate.ts. */
  memory: { parameters: number; optimizer: number; activations: number; largestBuffer: number; total: number };
  /** The largest single buffer this device allows (min of maxBufferSize, maxStorageBufferBindingSize). */
  maxBuffer: number;
  /** The total assumed available (ASSUMED_TOTAL_BUFFERS x maxBufferSize: WebGPU does not report memory). */
  budget: number;
  /** The largest batch that fits by the estimate (0: none). */
  largestBatch: number;
  /** The effective lr / wd schedule, one line. */
  schedule: string;
  /** The precision the set-up would run in and why (or why the one asked for cannot run here). */
  precision: string;
}

export type { AdapterReport, DeviceStatus };
