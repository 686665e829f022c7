/**
 * The platform-free training loop, used by the CLI and by the browser worker.
 *
 * Each step: a batch from the loader becomes a GPU tensor, a fresh per-image mask is drawn,
 * SparK runs forward and backward inside one scope (so every intermediate buffer returns to
 * the pool when the step's recording ends), and LAMB updates on the GPU. Nothing is read back
 * synchronously: the loss and the optimizer status are read asynchronously, with at most
 * `maxInFlight` steps queued ahead of the oldest unread result.
 *
 * The step is recorded once and replayed (src/gpu/recording.ts). Recording runs nothing: it
 * lists the step's commands, then gives its transient buffers memory by liveness. Step 0
 * (which makes the gradient buffers) is recorded and run once; step 1 is recorded and kept;
 * every later step copies its batch into the same input buffer, assigns its mask onto the
 * recorded mask, sets the scheduled lr, and re-encodes the recorded commands: no model code
 * runs. A step is recorded again only if its shape changes (batch, size) or weight decay turns
 * 0 or non-zero. One queue submit per step: the step's commands and its report's readback.
 *
 * Non-finite gradients: LAMB skips the update on the GPU (weights and moments untouched);
 * the trainer counts it, and after `maxConsecutiveSkips` in a row pauses the run with an
 * explanation instead of carrying on.
 *
 * Precision f16 (the Context's): dynamic loss scaling (src/optim/loss-scale.ts) seeds the
 * backward with the scale, which the GPU keeps and updates itself; a skip the scale explains
 * (finite loss, gradients overflowed at a scale above 1) backs it off and does not count
 * towards the pause.
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { PatchMask } from '../tensor/layout.ts';
import type { Recording } from '../gpu/recording.ts';
import type { SparK } from '../models/spark.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { Lamb } from '../optim/lamb.ts';
import { LossScaler, type LossScaleState } from '../optim/loss-scale.ts';
import { lrAt, wdAt, type ScheduleConfig } from '../optim/schedule.ts';
import { batchToTensor } from '../data/batch-tensor.ts';
import type { Batch } from '../data/loader.ts';
import type { ResumeCursor } from '../data/order.ts';
import type { DataMetrics } from '../data/types.ts';
import { Rng } from '../util/rng.ts';
import { tuneConvs } from '../ops/autotune.ts';
import { convKeysUsedBy } from '../ops/conv-tuning.ts';
import { encodeCheckpoint, restoreCheckpoint } from './checkpoint.ts';
import { decodeReport, REPORT_SCALE_OFFSET, REPORT_STATE_OFFSET, REPORT_VALUES, SkipWatch } from './step-report.ts';
import type { NamedArray } from '../io/state-dict.ts';

export type { Preview, StepMetrics } from './step-report.ts';

import { betasFor, type BatchSource, type TrainConfig, type TrainerEvents, type TrainerIO, type TrainerOptions, type TrainerState } from './trainer-types.ts';

export type { BatchSource, TrainConfig, TrainerEvents, TrainerIO, TrainerOptions, TrainerState } from './trainer-types.ts';
export { betasFor } from './trainer-types.ts';

interface RunState {
  step: number;
  epoch: number;
  cursor: ResumeCursor | null;
  maskRng: number;
  modelRng: number;
  skippedSteps: number;
}


export class Trainer {
  readonly model: SparK;
  readonly optimizer: Lamb;
  /** Dynamic loss scaling, or null (TrainConfig.lossScale). */
  readonly scaler: LossScaler | null;
  state: TrainerState = 'idle';
  private run: RunState;
  private maskRng: Rng;
  private modelRng: Rng;
  private readonly skips: SkipWatch;
  private loader: BatchSource | null = null;
  private previewImage: Tensor | null = null;
  private previewMask = null as ReturnType<SparK['randomMask']> | null;
  private pauseReason: string | null = null;
  /** Why the trainer paused itself (null: it did not): non-finite steps, or f16's range exceeded (SkipVerdict.f16Range). */
  pauseCause: 'diverged' | 'f16-range' | null = null;
  /** The step of the last checkpoint written (so the end of a run does not write it twice). */
  private savedStep = -1;
  /** The recorded step, what it was recorded for, and the buffers and mask it refers to. */
  private recording: Recording | null = null;
  private recordedKey = '';
  private input: Tensor | null = null;
  private stepMask: PatchMask | null = null;
  private readonly report: Tensor;
  /** When the last step's report arrived (stepMs). */
  private lastDone = 0;
  /** Settles when the last step's report has been handled (reports are handled in step order). */
  private reportsHandled: Promise<unknown> = Promise.resolve();
  /** The conv kernels were tuned (TrainerOptions.autotune). */
  private tuned = false;

  constructor(
    readonly ctx: Context,
    readonly config: TrainConfig,
    private io: TrainerIO,
    private events: TrainerEvents = {},
    private options: TrainerOptions = {},
  ) {
    this.modelRng = new Rng(config.seed ^ 0x5eed);
    this.maskRng = new Rng(config.seed ^ 0x3a5c);
    const precision = config.precision ?? ctx.precision;
    if (precision !== ctx.precision) {
      throw new Error(`the run is configured for precision ${precision} but its Context stores ${ctx.precision}: make it with new Context(gpu, { precision: '${precision}' })`);
    }
    this.model = createSparK(ctx, this.modelRng, config);
    const scaling = config.lossScale ?? precision === 'f16';
    this.scaler = scaling ? new LossScaler(ctx, scaling === true ? {} : scaling) : null;
    this.optimizer = new Lamb(ctx, this.model.namedParameters(), { kind: config.optimizer, ...betasFor(config.model), scaler: this.scaler ?? undefined });
    this.run = { step: 0, epoch: 0, cursor: null, maskRng: this.maskRng.state, modelRng: this.modelRng.state, skippedSteps: 0 };
    this.report = ctx.persistent([REPORT_VALUES]);
    this.skips = new SkipWatch(config.maxConsecutiveSkips, this.scaler !== null, precision === 'f16');
    this.model.train();
  }

  /**
   * Commands of the recorded step (dispatches, workgroups, owned bytes) and the recording itself
   * (a benchmark profiles a replay of it), or null before one is recorded.
   */
  get recordedStep(): { dispatches: number; workgroups: number; bytes: number; livePeakBytes: number; recording: Recording } | null {
    const r = this.recording;
    return r ? { dispatches: r.dispatches, workgroups: r.workgroups, bytes: r.assignedBytes, livePeakBytes: r.livePeakBytes, recording: r } : null;
  }

  /**
   * The memory of a step at `batch`'s shape, without running it: records the first step (it
   * makes the gradient and optimizer buffers) and then the step every later one repeats, runs
   * neither, and returns the second's own buffers (liveness-assigned, as a replayed step holds
   * them) and the most bytes live at one of its commands. Recording runs nothing, so this
   * takes seconds where running the step on a software adapter takes minutes. The weights are
   * unchanged; the trainer can train afterwards.
   */
  planStep(batch: Batch): { bytes: number; livePeakBytes: number } {
    const gpu = this.ctx.gpu;
    this.dispose();
    let sizes = { bytes: 0, livePeakBytes: 0 };
    this.loadInput(batch);
    for (let i = 0; i < 2; i++) {
      const mask = this.model.randomMask(batch.batch, this.maskRng);
      gpu.beginRecording();
      try {
        // Step i's schedule: weight decay 0 or not records different commands.
        this.recordStep(this.input!, mask, lrAt(this.schedule, i), wdAt(this.schedule, i));
      } finally {
        const rec = gpu.endRecording();
        sizes = { bytes: rec.assignedBytes, livePeakBytes: rec.livePeakBytes };
        gpu.releaseRecording(rec);
      }
    }
    return sizes;
  }

  /** Gives the recorded step's buffers back to the pool (the trainer records again if it trains on). */
  dispose(): void {
    if (this.recording) this.ctx.gpu.releaseRecording(this.recording);
    this.recording = null;
    this.recordedKey = '';
  }

  get step(): number {
    return this.run.step;
  }

  get schedule(): ScheduleConfig {
    const c = this.config;
    return { baseLr: c.baseLr, batchSize: c.batchSize, warmupIters: c.warmupSteps, totalIters: c.totalSteps, wd: c.wd, wdEnd: c.wdEnd };
  }

  /** Restores weights, optimizer state and the run position from a checkpoint. */
  restore(arrays: ReadonlyMap<string, NamedArray>, metadata: Record<string, string>): void {
    const { lossScale, ...run } = restoreCheckpoint(arrays, metadata, this.model, this.optimizer) as Partial<RunState> & { lossScale?: LossScaleState };
    if (typeof run.step !== 'number') throw new Error('this checkpoint has no run position: it holds weights only');
    this.run = { ...this.run, ...run } as RunState;
    // A checkpoint of a run without loss scaling (f32) starts the scaler afresh.
    if (this.scaler && lossScale) this.scaler.load(lossScale);
    this.maskRng.state = this.run.maskRng;
    this.modelRng.state = this.run.modelRng;
  }

  /**
   * Runs until the last step (or `untilStep`, then 'stopped'), a pause or a stop; writes a
   * checkpoint when it ends. Resolves with the final state.
   */
  async train(untilStep = this.config.totalSteps): Promise<TrainerState> {
    if (this.state === 'running') throw new Error('already running');
    this.state = 'running';
    this.pauseReason = null;
    this.pauseCause = null;
    this.loader = this.io.loader(this.run.cursor);
    const pending: Promise<void>[] = [];
    this.lastDone = performance.now();
    this.reportsHandled = Promise.resolve();
    try {
      while (this.state === 'running' && this.run.step < Math.min(untilStep, this.config.totalSteps)) {
        const batch = await this.loader.next();
        if (!batch) {
          this.events.notice?.('the data ran out before the last step');
          break;
        }
        const stepIndex = this.run.step;
        const encodeStart = performance.now();
        const tuneNow = Boolean(this.options.autotune) && !this.tuned;
        // The step's own conv shapes are the ones tuned: the Gpu may have seen others (the
        // app's demo model reconstructs on the training device), and which of those came
        // first would decide what is tuned.
        const { result: recorded, keys: stepKeys } = tuneNow ? convKeysUsedBy(this.ctx.gpu, () => this.record(batch, stepIndex)) : { result: this.record(batch, stepIndex), keys: [] };
        const { reportRead, lr, wd } = recorded;
        const encodeMs = performance.now() - encodeStart;
        if (tuneNow) {
          this.tuned = true;
          try {
            await tuneConvs(this.ctx, { keys: stepKeys, ...(this.options.autotune === true ? {} : this.options.autotune) });
          } catch (err) {
            // Tuning is an optimisation: the default kernels are always valid, so a failing
            // tuner (a store that cannot be written, a refused pipeline) must not end the run.
            this.events.notice?.(`kernel tuning failed (${err instanceof Error ? err.message : String(err)}); training goes on, shapes not tuned use the default kernels`);
          }
          this.dispose(); // a step recorded before tuning (if any) is recorded again with the chosen kernels
        }
        this.run.step++;
        this.run.epoch = batch.epoch;
        this.run.cursor = batch.cursor;
        this.run.maskRng = this.maskRng.state;
        this.run.modelRng = this.modelRng.state;
        // The reads' promises can settle out of step order (seen on lavapipe: step 2's before
        // step 1's), so each report waits for the previous one to be handled: metrics, skip
        // counts and the pause decision follow the steps.
        const inOrder = Promise.all([reportRead, this.reportsHandled.catch(() => {})]).then(([r]) => r);
        const reported = this.reportStep(stepIndex, batch, inOrder, lr, wd, encodeMs, this.loader.metrics);
        this.reportsHandled = reported;
        reported.catch(() => {}); // awaited below; this only keeps a loop that threw (lost device) from leaving it unhandled
        pending.push(reported);
        // Bounded run-ahead: wait for the oldest step's numbers before recording more.
        while (pending.length > this.config.maxInFlight) await pending.shift();
        if (this.config.previewEvery > 0 && this.run.step % this.config.previewEvery === 0) await this.preview(batch);
        if (this.config.checkpointEvery > 0 && this.run.step % this.config.checkpointEvery === 0) {
          await Promise.all(pending.splice(0));
          await this.checkpoint();
        }
      }
      await Promise.all(pending.splice(0));
    } finally {
      this.loader.close();
      this.loader = null;
    }
    // pause() and stop() change the state while the loop awaits, which TypeScript cannot see.
    let state = this.state as TrainerState;
    if (state === 'running') state = this.state = this.run.step >= this.config.totalSteps ? 'finished' : 'stopped';
    // The loop may just have written this step's checkpoint (checkpointEvery divides it).
    if (this.savedStep !== this.run.step) await this.checkpoint();
    if (state === 'paused' && this.pauseReason) this.events.notice?.(`paused: ${this.pauseReason}`);
    return state;
  }

  /** Pauses after the current step (a checkpoint is written). */
  pause(reason = 'paused by the user'): void {
    if (this.state !== 'running') return;
    this.pauseReason = reason;
    this.state = 'paused';
  }

  /**
   * Stops after the current step (a checkpoint is written). A paused trainer outside train()
   * has already written its checkpoint when it paused, so it is simply marked stopped.
   */
  stop(): void {
    if (this.state === 'running' || this.state === 'paused') this.state = 'stopped';
  }

  /** Writes a checkpoint of the current state now. */
  async checkpoint(): Promise<string> {
    await this.ctx.gpu.sync();
    const lossScale = this.scaler ? { lossScale: await this.scaler.read() } : {};
    const parts = await encodeCheckpoint(this.model, this.optimizer, { config: this.modelConfig(), run: { ...this.run, ...lossScale, train: this.config } });
    const where = await this.io.saveCheckpoint(this.run.step, parts);
    this.savedStep = this.run.step;
    this.events.checkpoint?.({ step: this.run.step, where });
    return where;
  }

  private modelConfig(): SparKConfig {
    // The ablation switches too (docs/evaluation.md), so a resumed ablation run stays one.
    const { model, inputSize, decoderWidth, maskRatio, dropPathRate, resnet, convnext, masking, hierarchical, zeroInitLastBn } = this.config;
    return { model, inputSize, decoderWidth, maskRatio, dropPathRate, resnet, convnext, masking, hierarchical, zeroInitLastBn } as SparKConfig;
  }

  /**
   * Records (or replays) one step without waiting. The read of its report (loss and optimizer
   * status) is recorded right behind the work, so one submit carries the step; the promise
   * settles when the GPU gets there.
   */
  private record(batch: Batch, step: number) {
    const ctx = this.ctx;
    const gpu = ctx.gpu;
    const lr = lrAt(this.schedule, step);
    const wd = wdAt(this.schedule, step);
    this.loadInput(batch);
    const mask = this.options.masksForTest?.(step, batch.batch) ?? this.model.randomMask(batch.batch, this.maskRng);
    const key = `${batch.batch}x${batch.size}:${wd === 0 ? 'no-wd' : 'wd'}`;
    if (this.recording && key === this.recordedKey) {
      this.stepMask!.assign(mask);
      this.optimizer.schedule(lr, wd);
      gpu.replay(this.recording);
    } else if (this.options.replay === false) {
      this.recordStep(this.input!, mask, lr, wd);
    } else {
      // Recorded steps get their buffers by liveness (recording.ts), so even a step that is
      // run once (the first, which makes the gradient buffers) is recorded and replayed.
      // The first step makes the gradient buffers, so it is not the step later ones repeat.
      const keep = this.model.parameters().every((p) => p.grad);
      this.dispose();
      this.stepMask = mask;
      gpu.beginRecording();
      try {
        this.recordStep(this.input!, mask, lr, wd);
      } catch (err) {
        try {
          gpu.releaseRecording(gpu.endRecording());
        } catch {
          // the step's own error is the one to report
        }
        throw err;
      }
      const rec = gpu.endRecording();
      gpu.replay(rec);
      if (keep) {
        this.recording = rec;
        this.recordedKey = key;
      } else {
        gpu.releaseRecording(rec);
      }
    }
    return { reportRead: this.report.read(), lr, wd };
  }

  /** Copies the batch into the input buffer the recorded step reads (made anew when its shape changes). */
  private loadInput(batch: Batch): void {
    const ctx = this.ctx;
    ctx.tidy(() => {
      const image = batchToTensor(ctx, batch);
      if (!this.input || this.input.size !== image.size || !this.input.layout!.sameGrid(image.layout!)) {
        this.input = ctx.persistent(image.shape, image.layout);
      }
      ctx.gpu.copy(image.buffer, this.input.buffer, image.bytes);
    });
  }

  /** The step's commands: forward, backward, LAMB, and the copies into the report buffer. */
  private recordStep(image: Tensor, mask: PatchMask, lr: number, wd: number): void {
    const ctx = this.ctx;
    ctx.tidy(() => {
      ctx.zeroGrad(this.model.parameters());
      const out = this.model.forward(image, mask);
      // With loss scaling the seed is the scale (a GPU value, so a replay uses the current one).
      ctx.backward(out.loss, this.scaler?.scale ?? null);
      ctx.gpu.copy(out.loss.buffer, this.report.buffer, 4);
      if (this.scaler) ctx.gpu.copy(this.scaler.scale.buffer, this.report.buffer, 4, 0, REPORT_SCALE_OFFSET);
    });
    this.optimizer.step(lr, wd);
    ctx.gpu.copy(this.optimizer.state.buffer, this.report.buffer, 16, 0, REPORT_STATE_OFFSET);
  }

  private async reportStep(
    step: number,
    batch: Batch,
    reportRead: Promise<Float32Array>,
    lr: number,
    wd: number,
    encodeMs: number,
    data: DataMetrics,
  ): Promise<void> {
    const r = await reportRead;
    // Reports are handled in step order, so this is the time since the previous step's.
    const done = performance.now();
    const stepMs = done - this.lastDone;
    this.lastDone = done;
    const { loss: value, status, lossScale } = decodeReport(r, this.scaler !== null);
    if (status.skipped) this.run.skippedSteps++;
    const verdict = this.skips.observe(step, { loss: value, status, lossScale });
    if (verdict.notice) this.events.notice?.(verdict.notice);
    if (verdict.pause) {
      this.pauseCause = verdict.f16Range ? 'f16-range' : 'diverged';
      this.pause(verdict.pause);
    }
    this.events.metrics?.({
      step,
      epoch: batch.epoch,
      loss: value,
      lr,
      weightDecay: wd,
      gradNorm: status.gradNorm,
      skippedStep: status.skipped,
      imagesPerSec: (batch.batch * 1000) / Math.max(stepMs, 1e-3),
      stepMs,
      encodeMs,
      dataWaitMs: batch.waitMs,
      skippedSamples: data.skippedDecode,
      skippedShards: data.skippedShards,
      skippedSteps: this.run.skippedSteps,
      lossScale,
    });
  }

  /** Reconstructions of a fixed preview batch (the first batch seen), in inference mode. */
  private async preview(batch: Batch): Promise<void> {
    const ctx = this.ctx;
    if (!this.previewImage) {
      this.previewImage = ctx.tidy(() => {
        const t = batchToTensor(ctx, batch);
        const kept = ctx.persistent(t.shape, t.layout);
        ctx.gpu.copy(t.buffer, kept.buffer, t.bytes);
        return kept;
      });
      this.previewMask = this.model.randomMask(batch.batch, new Rng(this.config.seed ^ 0x77));
    }
    const image = this.previewImage;
    const mask = this.previewMask!;
    this.model.eval();
    const reads = ctx.tidy(() => {
      const v = this.model.visualize(image, mask);
      return [image.read(), v.masked.read(), v.reconstruction.read(), v.composite.read()] as const;
    });
    this.model.train();
    const [original, masked, reconstruction, composite] = await Promise.all(reads);
    this.events.preview?.({ step: this.run.step, size: batch.size, batch: batch.batch, original, masked, reconstruction, composite });
  }
}
