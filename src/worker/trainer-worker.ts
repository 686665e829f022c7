/**
 * The training worker's face to the page: owns the GPU device, the checkpoint store and the
 * current run, so the page's thread only renders. The page drives it through comlink
 * (`Comlink.wrap<TrainerHost>(worker)`) and receives events through one subscribed callback
 * (`Comlink.proxy`). A run's life (supervised training, device rebuilds, automatic
 * checkpoints) is src/worker/run-lifecycle.ts; the masking demo, evaluation, fine-tuning and
 * tuning have their own hosts.
 */
import * as Comlink from 'comlink';
import { createBrowserGpu } from '../platform/browser/gpu.ts';
import { BitmapDecoder } from '../platform/browser/data-decode.ts';
import { browserShards } from '../platform/browser/data-sources.ts';
import { BrowserCheckpointStore, type Manifest } from '../platform/browser/checkpoint-store.ts';
import { urlShards } from '../data/sources.ts';
import { Context } from '../tensor/context.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { validateTrainConfig } from '../train/config.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { exportEncoder } from '../io/export.ts';
import { estimateTrainingMemory, assumedBudget, largestBatchThatFits, type MemoryEstimate } from '../train/memory-estimate.ts';
import type { Shard } from '../data/types.ts';
import { toTrainConfig, runTuning, type AdapterReport, type AppConfig, type DataSource, type HostEvent, type SetupPlan } from './protocol.ts';
import { describeSchedule } from '../train/lr-rule.ts';
import { plannedPrecision } from '../train/precision-choice.ts';
import type { SparK } from '../models/spark.ts';
import { demoModelFromFile, demoReconstruct, type DemoModelInfo, type DemoResult } from './demo-host.ts';
import { EvalHost, type EvalProgress, type EvalReport, type EvalRequest } from './eval-host.ts';
import { FinetuneHost, type FinetuneEnv, type FinetuneProgress, type FinetuneReport, type FinetuneRequest } from './finetune-host.ts';
import { RunLifecycle } from './run-lifecycle.ts';
import { BrowserClassifierStore, type ClassifierEntry } from '../platform/browser/classifier-store.ts';
import type { Prediction } from '../finetune/predict.ts';
import { modelNameOf } from '../models/zoo.ts';

/** A demo reconstruction on the training device writes a checkpoint first when the last is older than this. */
const DEMO_CHECKPOINT_AGE_MS = 60_000;

interface DemoSlot {
  ctx: Context;
  model: SparK;
  info: DemoModelInfo;
}

export class TrainerHost {
  private gpu: Gpu | null = null;
  private store: BrowserCheckpointStore | null = null;
  private listener: ((e: HostEvent) => void) | null = null;
  private current: RunLifecycle | null = null;
  /** The masking demo's imported model and the shipped one, each in its own context. */
  private imported: DemoSlot | null = null;
  private shipped: DemoSlot | null = null;
  private demoChoice: 'auto' | 'imported' | 'shipped' | 'trainer' = 'auto';
  private evaluator = new EvalHost();
  private finetuner = new FinetuneHost();
  private classifiersOpened: Promise<BrowserClassifierStore> | null = null;

  /** The adapter the worker trains on (throws with what to do when there is no WebGPU). */
  async adapter(): Promise<AdapterReport> {
    return (await this.device()).adapter;
  }

  /** The memory estimate and schedule of a set-up against this device's limits (no GPU work). */
  async plan(app: AppConfig): Promise<SetupPlan> {
    const gpu = await this.device();
    const asked = toTrainConfig(app);
    // Estimated at the precision the run would get ('auto' decided on this adapter; an
    // impossible ask is estimated as f32 and refused by the precision line below).
    const precision = plannedPrecision(gpu, asked.precision);
    const config = { ...asked, precision: precision.precision };
    const limits = gpu.limits;
    const memory: MemoryEstimate = estimateTrainingMemory(config);
    const budget = assumedBudget(limits);
    const schedule = { baseLr: config.baseLr, batchSize: config.batchSize, warmupIters: config.warmupSteps, totalIters: config.totalSteps, wd: config.wd, wdEnd: config.wdEnd };
    return {
      memory,
      maxBuffer: Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize),
      budget,
      largestBatch: largestBatchThatFits(config, budget, limits),
      schedule: describeSchedule(schedule),
      precision: precision.line,
    };
  }

  /** Imports a checkpoint (webspark or official SparK, .pth or .safetensors) for the masking demo. */
  async demoImport(bytes: Uint8Array, name: string): Promise<DemoModelInfo> {
    this.imported = await this.demoLoad(bytes, name, this.imported);
    this.demoChoice = 'imported';
    return this.imported.info;
  }

  /**
   * Loads the shipped demo model from `url` (once). `choose`: the user chose it (it stays shown
   * when a run starts); otherwise it is the default, shown until a run exists. Returns what the demo shows now.
   */
  async demoUseShipped(url: string, choose: boolean): Promise<DemoModelInfo | null> {
    if (!this.shipped) {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`the shipped demo model ${url}: HTTP ${response.status}`);
      this.shipped = await this.demoLoad(new Uint8Array(await response.arrayBuffer()), url.split('/').pop()!, null);
      this.shipped.info.source = 'the shipped demo model';
    }
    if (choose) this.demoChoice = 'shipped';
    return this.demoModel();
  }

  private async demoLoad(bytes: Uint8Array, name: string, replaces: DemoSlot | null): Promise<DemoSlot> {
    // A large import on the training device can lose it: the run's position is saved first.
    await this.current?.checkpointNow();
    const ctx = new Context(await this.device());
    try {
      const { model, info } = demoModelFromFile(ctx, bytes, name);
      replaces?.ctx.dispose();
      return { ctx, model, info };
    } catch (err) {
      ctx.dispose();
      throw err;
    }
  }

  /**
   * The demo's model: the one the user chose last; before any choice, the model being trained
   * once a run exists, else the shipped one.
   */
  private demoSlot(): { model: SparK; info: DemoModelInfo } | null {
    const t = this.trainer;
    const trained = t ? { model: t.model, info: { source: 'the model being trained', model: modelNameOf(t.config), inputSize: t.config.inputSize, fmap: t.model.fmap } } : null;
    if (this.demoChoice === 'imported') return this.imported;
    if (this.demoChoice === 'shipped') return this.shipped;
    if (this.demoChoice === 'trainer') return trained;
    return trained ?? this.shipped;
  }

  /** What the demo shows now (null: no model yet). */
  demoModel(): DemoModelInfo | null {
    return this.demoSlot()?.info ?? null;
  }

  /** Drops an imported demo model: the demo goes back to the model being trained. */
  demoUseTrainer(): DemoModelInfo | null {
    this.imported?.ctx.dispose();
    this.imported = null;
    this.demoChoice = 'trainer';
    return this.demoModel();
  }

  async demoReconstruct(image: Float32Array, visible: Uint8Array): Promise<DemoResult> {
    if (this.current) await this.current.checkpointIfOlder(DEMO_CHECKPOINT_AGE_MS);
    const model = this.demoSlot()?.model;
    if (!model) throw new Error('demo: no model yet: start a run or import a checkpoint');
    const r = await demoReconstruct(model, image, visible);
    return Comlink.transfer(r, [r.masked.buffer, r.reconstruction.buffer, r.composite.buffer, r.patchError.buffer]);
  }

  /** The Evaluate panel: k-NN / linear probe of the trained model or a checkpoint, and a random init (src/worker/eval-host.ts). */
  async evaluate(request: EvalRequest, onProgress?: (p: EvalProgress) => void): Promise<EvalReport> {
    // An evaluation runs on the training device: the run's position is saved before it (the
    // model being trained is refused while it runs, so that request needs none).
    if (request.model.kind !== 'current') await this.current?.checkpointNow();
    return this.evaluator.evaluate(this.labelledEnv(), request, onProgress);
  }

  /** The Fine-tune panel: a classifier trained from the model being trained, a checkpoint or random init (src/worker/finetune-host.ts). */
  async finetune(request: FinetuneRequest, onProgress?: (p: FinetuneProgress) => void): Promise<FinetuneReport> {
    // As an evaluation: the run's position is saved first (the running model is refused).
    if (request.model.kind !== 'current') await this.current?.checkpointNow();
    return this.finetuner.finetune(this.finetuneEnv(), request, onProgress);
  }

  /** Ends the fine-tuning run after its current step (nothing is stored). */
  stopFinetune(): void {
    this.finetuner.stop();
  }

  /** Top-5 predictions of a stored classifier on images. */
  predict(file: string, images: { name: string; blob: Blob }[]): Promise<Prediction[]> {
    return this.finetuner.predict(this.finetuneEnv(), file, images);
  }

  async classifiers(): Promise<ClassifierEntry[]> {
    return (await this.classifierStore()).list();
  }

  async readClassifier(file: string): Promise<Uint8Array> {
    const bytes = await (await this.classifierStore()).read(file);
    return Comlink.transfer(bytes, [bytes.buffer]);
  }

  async deleteClassifier(file: string): Promise<void> {
    await (await this.classifierStore()).delete(file);
  }

  /** What the evaluation and fine-tuning hosts read: the device, the live model, stored checkpoints, data. */
  private labelledEnv() {
    return {
      gpu: () => this.device(),
      live: () => (this.trainer ? { model: this.trainer.model, config: this.trainer.config, state: this.trainer.state, step: this.trainer.step } : null),
      readStored: async (file: string) => (await this.checkpoints()).read(file),
      shards: shardsOf,
      decoder: () => new BitmapDecoder(),
    };
  }

  private finetuneEnv(): FinetuneEnv {
    return {
      ...this.labelledEnv(),
      classNames: (source: DataSource) => (source.kind === 'files' ? browserShards(source.files, { name: source.label }).classes : []),
      saveClassifier: async (parts, info) => (await this.classifierStore()).save(parts, info),
      readClassifier: async (file) => (await this.classifierStore()).read(file),
    };
  }

  private async classifierStore(): Promise<BrowserClassifierStore> {
    this.classifiersOpened ??= BrowserClassifierStore.open();
    return this.classifiersOpened;
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
    const run = await store.addRun(config, source.label, runTuning(app));
    const lifecycle = new RunLifecycle(this.env(), run, shards, app.autosaveMinutes);
    await lifecycle.open();
    this.current = lifecycle;
    lifecycle.launch();
    return run.id;
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
    const lifecycle = new RunLifecycle(this.env(), run, shards, autosaveMinutes);
    const trainer = await lifecycle.open(file);
    this.current = lifecycle;
    lifecycle.launch();
    return trainer.step;
  }

  pause(): void {
    this.current?.pause();
  }

  resume(): void {
    this.current?.resume();
  }

  stop(): void {
    this.current?.stop();
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
    if (this.current?.run.id === id) await this.halt();
    await (await this.checkpoints()).deleteRun(id);
  }

  private get trainer() {
    return this.current?.trainer ?? null;
  }

  private env() {
    return { device: () => this.device(), checkpoints: () => this.checkpoints(), emit: (e: HostEvent) => this.listener?.(e) };
  }

  /** The GPU; a new device after the last one was lost (so a run can go on without a reload). */
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
    await this.current?.close();
    this.current = null;
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
