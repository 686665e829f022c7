/**
 * The training worker: owns the GPU device, the Trainer, the data loader and the checkpoint
 * store, so the page's thread only renders. The page drives it through comlink
 * (`Comlink.wrap<TrainerHost>(worker)`) and receives events through one subscribed callback
 * (`Comlink.proxy`).
 *
 * Automatic checkpoints every few minutes reuse the pause path: the trainer pauses after the
 * current step (its `train()` then writes a checkpoint with a consistent run position), and
 * the worker starts it again at once. Checkpointing from outside the loop would read weights
 * while later steps are being recorded.
 */
import * as Comlink from 'comlink';
import { createBrowserGpu } from '../platform/browser/gpu.ts';
import { BitmapDecoder } from '../platform/browser/data-decode.ts';
import { browserShards } from '../platform/browser/data-sources.ts';
import { BrowserCheckpointStore, type Manifest, type RunEntry } from '../platform/browser/checkpoint-store.ts';
import { urlShards } from '../data/sources.ts';
import { DataLoader } from '../data/loader.ts';
import { Context } from '../tensor/context.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Trainer, type TrainConfig } from '../train/trainer.ts';
import { validateTrainConfig } from '../train/config.ts';
import { isStorageFull } from '../train/supervisor.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { exportEncoder } from '../io/export.ts';
import { GpuOutOfMemoryError } from '../gpu/errors.ts';
import { estimateTrainingMemory, outOfMemoryAdvice, assumedBudget, largestBatchThatFits, type MemoryEstimate } from '../train/memory-estimate.ts';
import type { Shard } from '../data/types.ts';
import { toTrainConfig, type AdapterReport, type AppConfig, type DataSource, type HostEvent, type SetupPlan } from './protocol.ts';
import { describeSchedule } from '../train/lr-rule.ts';
import type { SparK } from '../models/spark.ts';
import { demoModelFromFile, demoReconstruct, type DemoModelInfo, type DemoResult } from './demo-host.ts';
import { EvalHost, type EvalProgress, type EvalReport, type EvalRequest } from './eval-host.ts';
import { appTuneOptions } from './tune-host.ts';
import { BrowserTuneStore } from '../platform/browser/tune-store.ts';
import { runTuning, type RunTuning } from './protocol.ts';

const AUTOSAVE_REASON = 'automatic checkpoint';

export class TrainerHost {
  private gpu: Gpu | null = null;
  private ctx: Context | null = null;
  private trainer: Trainer | null = null;
  private store: BrowserCheckpointStore | null = null;
  private listener: ((e: HostEvent) => void) | null = null;
  private run: RunEntry | null = null;
  private losses: number[] = [];
  private loop: Promise<void> | null = null;
  private autosaving = false;
  private lastSave = 0;
  private autosaveMs = 0;
  /** Stop was asked for while an automatic checkpoint was being written. */
  private stopAfterSave = false;
  /** The masking demo's imported model, in its own context (null: it uses the trainer's model). */
  private demo: { ctx: Context; model: SparK; info: DemoModelInfo } | null = null;
  private evaluator = new EvalHost();

  /** The adapter the worker trains on (throws with what to do when there is no WebGPU). */
  async adapter(): Promise<AdapterReport> {
    return (await this.device()).adapter;
  }

  /** The memory estimate and schedule of a set-up against this device's limits (no GPU work). */
  async plan(app: AppConfig): Promise<SetupPlan> {
    const config = toTrainConfig(app);
    const limits = (await this.device()).limits;
    const memory: MemoryEstimate = estimateTrainingMemory(config);
    const budget = assumedBudget(limits);
    const schedule = { baseLr: config.baseLr, batchSize: config.batchSize, warmupIters: config.warmupSteps, totalIters: config.totalSteps, wd: config.wd, wdEnd: config.wdEnd };
    return {
      memory,
      maxBuffer: Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize),
      budget,
      largestBatch: largestBatchThatFits(config, budget, limits),
      schedule: describeSchedule(schedule),
    };
  }

  /** Imports a checkpoint (webspark or official SparK, .pth or .safetensors) for the masking demo. */
  async demoImport(bytes: Uint8Array, name: string): Promise<DemoModelInfo> {
    const ctx = new Context(await this.device());
    try {
      const { model, info } = demoModelFromFile(ctx, bytes, name);
      this.demo?.ctx.dispose();
      this.demo = { ctx, model, info };
      return info;
    } catch (err) {
      ctx.dispose();
      throw err;
    }
  }

  /** The model the demo uses: the imported one, else the one being trained; null when neither. */
  demoModel(): DemoModelInfo | null {
    if (this.demo) return this.demo.info;
    const t = this.trainer;
    if (!t) return null;
    return { source: 'the model being trained', model: t.config.resnet ? 'tiny' : t.config.model, inputSize: t.config.inputSize, fmap: t.model.fmap };
  }

  /** Drops an imported demo model: the demo goes back to the model being trained. */
  demoUseTrainer(): DemoModelInfo | null {
    this.demo?.ctx.dispose();
    this.demo = null;
    return this.demoModel();
  }

  async demoReconstruct(image: Float32Array, visible: Uint8Array): Promise<DemoResult> {
    const model = this.demo?.model ?? this.trainer?.model;
    if (!model) throw new Error('demo: no model yet: start a run or import a checkpoint');
    const r = await demoReconstruct(model, image, visible);
    return Comlink.transfer(r, [r.masked.buffer, r.reconstruction.buffer, r.composite.buffer, r.patchError.buffer]);
  }

  /** The Evaluate panel: k-NN / linear probe of the trained model or a checkpoint, and a random init (src/worker/eval-host.ts). */
  evaluate(request: EvalRequest, onProgress?: (p: EvalProgress) => void): Promise<EvalReport> {
    const env = {
      gpu: () => this.device(),
      live: () => (this.trainer ? { model: this.trainer.model, config: this.trainer.config, state: this.trainer.state, step: this.trainer.step } : null),
      readStored: async (file: string) => (await this.checkpoints()).read(file),
      shards: shardsOf,
      decoder: () => new BitmapDecoder(),
    };
    return this.evaluator.evaluate(env, request, onProgress);
  }

  subscribe(listener: (e: HostEvent) => void): void {
    this.listener = listener;
  }

  async manifest(): Promise<Manifest> {
    return (await this.checkpoints()).manifest();
  }

  /** Starts a new run on `source`. */
  async start(app: AppConfig, source: DataSource): Promise<string> {
    const config = toTrainConfig(app);
    validateTrainConfig(config);
    const shards = shardsOf(source);
    await this.halt();
    const store = await this.checkpoints();
    this.run = await store.addRun(config, source.label, runTuning(app));
    this.losses = [];
    try {
      await this.build(config, shards, app.autosaveMinutes, this.run.tuning);
    } catch (err) {
      this.ctx?.dispose();
      this.ctx = null;
      throw new Error(this.explain(err, config));
    }
    this.launch();
    return this.run.id;
  }

  /** Continues a stored run from its newest checkpoint; returns the step it continues at. */
  async resumeRun(runId: string, source: DataSource, autosaveMinutes: number): Promise<number> {
    const shards = shardsOf(source);
    await this.halt();
    const store = await this.checkpoints();
    const run = await store.run(runId);
    const latest = run?.checkpoints[run.checkpoints.length - 1];
    if (!run || !latest) throw new Error(`run ${runId} has no checkpoint to resume from`);
    const file = readWeightFile(await store.read(latest.file), latest.file);
    // The run's own tuning set-up: its choices come back from this browser's cache, re-checked, not re-timed.
    const trainer = await this.build(run.config, shards, autosaveMinutes, run.tuning);
    trainer.restore(file.arrays, file.metadata);
    this.run = run;
    this.losses = run.losses.slice(0, trainer.step);
    this.launch();
    return trainer.step;
  }

  pause(): void {
    this.autosaving = false;
    this.trainer?.pause();
  }

  resume(): void {
    if (this.trainer && this.trainer.state === 'paused' && !this.loop) this.launch();
  }

  stop(): void {
    // During an automatic checkpoint the trainer is paused, and stop() would not reach it.
    if (this.autosaving) this.stopAfterSave = true;
    const trainer = this.trainer;
    if (!trainer) return;
    // A paused run has no loop to report the new state (its checkpoint was written at the pause).
    const idlePaused = trainer.state === 'paused' && !this.loop;
    trainer.stop();
    if (idlePaused && this.run) this.emit({ type: 'state', state: trainer.state, step: trainer.step, totalSteps: trainer.config.totalSteps, runId: this.run.id });
  }

  async readCheckpoint(file: string): Promise<Uint8Array> {
    const bytes = await (await this.checkpoints()).read(file);
    return Comlink.transfer(bytes, [bytes.buffer]);
  }

  /** The encoder of a stored checkpoint alone, timm-style keys (as `webspark export-encoder`). */
  async exportEncoder(file: string): Promise<Uint8Array> {
    const store = await this.checkpoints();
    const run = (await store.manifest()).runs.find((r) => r.checkpoints.some((c) => c.file === file));
    const weights = readWeightFile(await store.read(file), file);
    const parts = exportEncoder(weights.arrays, weights.config.model ?? run?.config.model ?? 'unknown');
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return Comlink.transfer(out, [out.buffer]);
  }

  async deleteCheckpoint(file: string): Promise<void> {
    await (await this.checkpoints()).delete(file);
  }

  async deleteRun(id: string): Promise<void> {
    if (this.run?.id === id) await this.halt();
    await (await this.checkpoints()).deleteRun(id);
  }

  /** An error's message; out of GPU memory also names the largest batch that fits by the estimate. */
  private explain(err: unknown, config: TrainConfig): string {
    if (err instanceof GpuOutOfMemoryError && this.gpu) return outOfMemoryAdvice(config, this.gpu.limits, err.message);
    return (err as Error).message;
  }

  private emit(e: HostEvent): void {
    this.listener?.(e);
  }

  /** The GPU; a new device after the last one was lost (so a run can resume without a reload). */
  private async device(): Promise<Gpu> {
    if (this.gpu?.isLost) this.gpu = null;
    this.gpu ??= await createBrowserGpu();
    return this.gpu;
  }

  private async checkpoints(): Promise<BrowserCheckpointStore> {
    this.store ??= await BrowserCheckpointStore.open();
    return this.store;
  }

  /** Stops the current run (it checkpoints) and frees its GPU memory. */
  private async halt(): Promise<void> {
    this.stop();
    await this.loop;
    this.trainer?.dispose();
    this.ctx?.dispose();
    this.ctx = null;
    this.trainer = null;
  }

  private async build(config: TrainConfig, shards: Shard[], autosaveMinutes: number, tuning?: RunTuning): Promise<Trainer> {
    const gpu = await this.device();
    const store = await this.checkpoints();
    const decoder = new BitmapDecoder();
    this.ctx = new Context(gpu);
    this.autosaveMs = autosaveMinutes * 60_000;
    this.lastSave = performance.now();
    const trainer: Trainer = new Trainer(
      this.ctx,
      config,
      {
        loader: (cursor) =>
          new DataLoader({ shards, decoder, batchSize: config.batchSize, seed: config.seed, shuffleBuffer: 64, augment: { size: config.inputSize }, cursor }),
        saveCheckpoint: async (step, parts) => {
          const file = await store.save(this.run!.id, step, parts, { finished: trainer.state === 'finished', losses: this.losses.slice(0, step) });
          this.lastSave = performance.now();
          return file;
        },
      },
      {
        metrics: (m) => {
          this.losses[m.step] = m.loss;
          this.emit({ type: 'metrics', metrics: m });
          if (this.autosaveMs > 0 && performance.now() - this.lastSave > this.autosaveMs && trainer.state === 'running') {
            this.autosaving = true;
            trainer.pause(AUTOSAVE_REASON);
          }
        },
        preview: (preview) => this.emit({ type: 'preview', preview }),
        checkpoint: ({ step, where }) => this.emit({ type: 'checkpoint', step, file: where }),
        notice: (message) => {
          if (!message.endsWith(AUTOSAVE_REASON)) this.emit({ type: 'notice', message });
        },
      },
      { autotune: appTuneOptions(tuning, gpu, (e) => this.emit(e), new BrowserTuneStore()) ?? false },
    );
    this.trainer = trainer;
    return trainer;
  }

  private launch(): void {
    const trainer = this.trainer!;
    const state = () => ({ type: 'state', state: trainer.state, step: trainer.step, totalSteps: trainer.config.totalSteps, runId: this.run!.id }) as const;
    this.loop = (async () => {
      try {
        let autosaved = false;
        for (;;) {
          const running = trainer.train();
          // After an automatic checkpoint the run goes on: the page saw no pause, so no new start.
          if (!autosaved) this.emit(state());
          const end = await running;
          autosaved = end === 'paused' && this.autosaving;
          this.autosaving = false;
          if (autosaved && this.stopAfterSave) {
            trainer.state = 'stopped'; // the checkpoint of this position is written
            autosaved = false;
          }
          this.stopAfterSave = false;
          if (autosaved) continue;
          this.emit(state());
          return;
        }
      } catch (err) {
        if (isStorageFull(err)) {
          // The previous checkpoint is intact and the weights are still on the GPU: pause, so
          // the user can free space (delete old runs) and press resume (docs/reliability.md).
          trainer.state = 'paused';
          this.emit({ type: 'notice', message: `paused: ${(err as Error).message} Free some space (delete old runs), then resume.` });
          this.emit(state());
          return;
        }
        this.emit({ type: 'notice', message: `training failed: ${this.explain(err, trainer.config)}` });
        trainer.state = 'stopped';
        this.emit(state());
      } finally {
        this.loop = null;
      }
    })();
  }
}

function shardsOf(source: DataSource): Shard[] {
  if (source.kind === 'url') {
    if (!source.pattern.trim()) throw new Error('data: give a shard URL or pattern');
    const headers = source.token ? { Authorization: `Bearer ${source.token}` } : undefined;
    return urlShards(source.pattern.trim(), { retries: 3, backoffMs: 200, ...(headers ? { headers } : {}) });
  }
  const { shards } = browserShards(source.files, { name: source.label });
  if (shards.length === 0) throw new Error('data: none of the chosen files is a shard (.tar, .tar.gz, .parquet) or an image');
  return shards;
}

Comlink.expose(new TrainerHost());
