/**
 * One training run in the worker, from start (or resume) to its end, through the Supervisor
 * the CLI uses too (src/train/supervisor.ts): a lost GPU device (driver reset, the browser's
 * GPU process crashed, `device.destroy()`) is rebuilt and the run restored from its newest
 * OPFS checkpoint without the page; a full quota pauses it; checkpoints are written every
 * `autosaveMinutes` and before operations that can lose the device (`checkpointNow`).
 *
 * What happens is reported as typed events (src/worker/protocol.ts): `state` (with `failure`
 * or `pausedFor` when a fault decided it) and `device` (the status line), besides the log's
 * `notice` lines. The page decides nothing from message text.
 */
import { Context } from '../tensor/context.ts';
import { choosePrecision, precisionLine } from '../train/precision-choice.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { GpuOutOfMemoryError } from '../gpu/errors.ts';
import { Trainer, type TrainConfig, type TrainerState } from '../train/trainer.ts';
import { DeviceUnstableError, Supervisor, type BuiltTrainer, type CheckpointData, type SupervisedResult } from '../train/supervisor.ts';
import { outOfMemoryAdvice } from '../train/memory-estimate.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { DataLoader } from '../data/loader.ts';
import type { Shard } from '../data/types.ts';
import { BitmapDecoder } from '../platform/browser/data-decode.ts';
import type { BrowserCheckpointStore, RunEntry } from '../platform/browser/checkpoint-store.ts';
import { BrowserTuneStore } from '../platform/browser/tune-store.ts';
import { appTuneOptions } from './tune-host.ts';
import type { HostEvent, RunFailure, RunTuning } from './protocol.ts';

/** What a run needs from the worker around it. */
export interface RunEnv {
  /** The worker's GPU: a new device once the last one was lost. */
  device(): Promise<Gpu>;
  checkpoints(): Promise<BrowserCheckpointStore>;
  emit(e: HostEvent): void;
}

export class RunLifecycle {
  private supervisor: Supervisor | null = null;
  private loop: Promise<void> | null = null;
  private losses: number[] = [];
  /** The step reached, kept when the trainer goes with its device. */
  private lastStep = 0;
  /** When the last checkpoint was written (performance.now()). */
  private savedAt = performance.now();

  constructor(
    private env: RunEnv,
    readonly run: RunEntry,
    private shards: Shard[],
    private autosaveMinutes: number,
  ) {}

  /** The trainer of the current device (null while a new one is being built). */
  get trainer(): Trainer | null {
    return this.supervisor?.trainer ?? null;
  }

  get config(): TrainConfig {
    return this.run.config;
  }

  /** Builds the first trainer (the caller starts it with `launch`). Out of memory names the largest batch that fits. */
  async open(checkpoint?: CheckpointData): Promise<Trainer> {
    // 'auto' precision may fall back to f32 when f16's range is exceeded; an asked-for f16 pauses.
    const auto = this.config.precision === undefined;
    this.supervisor = new Supervisor({
      fallbackToF32: () => {
        if (!auto || this.config.precision !== 'f16') return false;
        this.config.precision = 'f32';
        return true;
      },
      build: () => this.build(),
      latest: () => this.latest(),
      notice: (message) => this.env.emit({ type: 'notice', message }),
      status: (status) => {
        if (status.kind === 'resumed') this.losses.length = Math.min(this.losses.length, status.step);
        this.env.emit({ type: 'device', status });
      },
      checkpointEveryMs: this.autosaveMinutes * 60_000,
    });
    let trainer: Trainer;
    try {
      trainer = await this.supervisor.start();
    } catch (err) {
      throw new Error(await this.explain(err));
    }
    if (checkpoint) {
      trainer.restore(checkpoint.arrays, checkpoint.metadata);
      this.losses = this.run.losses.slice(0, trainer.step);
    }
    this.lastStep = trainer.step;
    return trainer;
  }

  /** Trains on in the background until the run ends, pauses or fails; events say which. */
  launch(): void {
    if (this.loop || !this.supervisor) return;
    const supervisor = this.supervisor;
    this.emitState('running');
    this.loop = (async () => {
      try {
        const result: SupervisedResult = await supervisor.run();
        this.lastStep = result.step;
        this.emitState(result.state, result.pausedFor ? { pausedFor: result.pausedFor } : {});
      } catch (err) {
        const failure = await this.failureOf(err);
        this.env.emit({ type: 'notice', message: `training failed: ${failure.message}` });
        const trainer = supervisor.trainer;
        if (trainer) trainer.state = 'stopped';
        this.emitState('stopped', { failure });
      } finally {
        this.loop = null;
      }
    })();
  }

  get running(): boolean {
    return this.loop !== null;
  }

  pause(): void {
    this.supervisor?.pause();
  }

  /** Continues a paused run (after the user's pause or a full quota: the missed checkpoint is written first). */
  resume(): void {
    if (this.trainer?.state === 'paused') this.launch();
  }

  stop(): void {
    const trainer = this.trainer;
    // A paused run has no loop to report the new state (its checkpoint was written at the pause).
    const idlePaused = trainer?.state === 'paused' && !this.loop;
    this.supervisor?.stop();
    if (idlePaused) this.emitState(trainer.state);
  }

  /** A checkpoint of the running position, before an operation that can lose the device. */
  checkpointNow(): Promise<void> {
    return this.supervisor?.checkpointNow() ?? Promise.resolve();
  }

  /** `checkpointNow` unless a checkpoint was written within `ms` (for frequent small operations). */
  checkpointIfOlder(ms: number): Promise<void> {
    return performance.now() - this.savedAt > ms ? this.checkpointNow() : Promise.resolve();
  }

  /** Stops the run (it checkpoints), waits for it and frees its GPU memory. */
  async close(): Promise<void> {
    this.stop();
    await this.loop;
    this.supervisor?.dispose();
    this.supervisor = null;
  }

  private emitState(state: TrainerState, extra: { failure?: RunFailure; pausedFor?: 'storage-full' } = {}): void {
    const step = this.trainer?.step ?? this.lastStep;
    this.env.emit({ type: 'state', state, step, totalSteps: this.config.totalSteps, runId: this.run.id, ...extra });
  }

  private async build(): Promise<BuiltTrainer> {
    const gpu = await this.env.device();
    const store = await this.env.checkpoints();
    const config = this.config;
    // 'auto' is decided on the first device and recorded in the run's config, so a resumed run keeps it.
    const choice = choosePrecision(gpu, config.precision);
    if (config.precision === undefined) this.env.emit({ type: 'notice', message: precisionLine(choice) });
    config.precision = choice.precision;
    const ctx = new Context(gpu, { precision: choice.precision });
    const decoder = new BitmapDecoder();
    const tuning: RunTuning | undefined = this.run.tuning;
    let trainer: Trainer;
    try {
      trainer = new Trainer(
        ctx,
        config,
        {
          loader: (cursor) =>
            new DataLoader({ shards: this.shards, decoder, batchSize: config.batchSize, seed: config.seed, shuffleBuffer: 64, augment: { size: config.inputSize }, cursor }),
          saveCheckpoint: (step, parts) =>
            store.save(this.run.id, step, parts, { finished: trainer.state === 'finished', losses: this.losses.slice(0, step) }),
        },
        {
          metrics: (m) => {
            this.losses[m.step] = m.loss;
            this.lastStep = m.step + 1;
            this.env.emit({ type: 'metrics', metrics: m });
          },
          preview: (preview) => this.env.emit({ type: 'preview', preview }),
          checkpoint: ({ step, where }) => {
            this.savedAt = performance.now();
            this.env.emit({ type: 'checkpoint', step, file: where });
          },
          notice: (message) => this.env.emit({ type: 'notice', message }),
        },
        // A rebuilt device tunes again: its choices come back from this browser's cache, re-checked.
        { autotune: appTuneOptions(tuning, (e) => this.env.emit(e), new BrowserTuneStore()) ?? false },
      );
    } catch (err) {
      ctx.dispose();
      throw err;
    }
    return {
      trainer,
      dispose: () => {
        trainer.dispose();
        ctx.dispose();
        // A lost device is replaced by `env.device()` on the next build; a live one is kept for the page's other uses.
      },
    };
  }

  private async latest(): Promise<CheckpointData | null> {
    const store = await this.env.checkpoints();
    const run = await store.run(this.run.id);
    const last = run?.checkpoints[run.checkpoints.length - 1];
    if (!last) return null;
    return readWeightFile(await store.read(last.file), last.file);
  }

  private async explain(err: unknown): Promise<string> {
    if (err instanceof GpuOutOfMemoryError) return outOfMemoryAdvice(this.config, (await this.env.device()).limits, err.message);
    return (err as Error).message;
  }

  private async failureOf(err: unknown): Promise<RunFailure> {
    const message = await this.explain(err);
    if (err instanceof DeviceUnstableError) return { kind: 'device-unstable', message };
    if (err instanceof GpuOutOfMemoryError) return { kind: 'out-of-memory', message };
    return { kind: 'error', message };
  }
}
