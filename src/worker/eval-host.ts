/**
 * The Evaluate panel's side of the worker: k-NN or a linear probe (src/eval/evaluate.ts) on
 * frozen features of
 * (a) the model being trained, when its run is paused, stopped or finished: its weights are
 *     copied into the evaluation's own Context, so the run is never touched and may resume
 *     while the evaluation goes on; while a step runs the request is refused (press Pause);
 * (b) a checkpoint: one from the app's store, or a file the user picks (webspark's, an official
 *     SparK `.pth` / `.safetensors`, or an exported encoder);
 * (c) and, for comparison, a random initialisation of the same architecture (fresh seed).
 * Data: any of the app's sources (`DataSource`); the labels are `Sample.label` (.cls, class
 * folders, a parquet label column), split by the seeded key hash of src/eval/split.ts, or with
 * the validation images from a source of their own (as `webspark eval --val-data`).
 *
 * Platform-free apart from what `EvalEnv` supplies (the worker: its GPU device, checkpoint
 * store and createImageBitmap decoder; the Node tests: Dawn and sharp).
 */
import type { ImageDecoder } from '../data/decoder.ts';
import type { Shard } from '../data/types.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { SparKConfig } from '../models/registry.ts';
import { modelSpec } from '../models/zoo.ts';
import type { SparK } from '../models/spark.ts';
import { Context } from '../tensor/context.ts';
import type { TrainerState } from '../train/trainer.ts';
import { evaluateEncoder, type Protocol } from '../eval/evaluate.ts';
import { loadLabelledSplit } from '../eval/labelled-images.ts';
import { copyOfModel, describeConfig, modelFromFile, randomModel } from '../eval/eval-models.ts';
import type { DataSource } from './protocol.ts';

/** Which weights to evaluate. */
export type EvalModelChoice =
  | { kind: 'current' }
  | { kind: 'stored'; file: string }
  | { kind: 'file'; name: string; blob: Blob };

export interface EvalRequest {
  model: EvalModelChoice;
  protocol: Protocol;
  data: DataSource;
  /** Validation images from their own source (as `webspark eval --val-data`); then `data` is all training. */
  valData?: DataSource;
  /** Most images on each side of the split. */
  trainLimit: number;
  valLimit: number;
  /** The seeded split by sample key (as `webspark eval` without --val-data: 0.2, seed 0). */
  valFraction: number;
  splitSeed: number;
  /** Also evaluate a random initialisation of the same architecture. */
  random: boolean;
  /** Its seed (the panel uses 1; the trainer initialises from `config.seed ^ 0x5eed`). */
  randomSeed: number;
  /** ResNets: the random encoder without timm's zeroed residual branches (the stronger baseline). */
  randomPlainInit?: boolean;
  /** k-NN neighbours (20) and linear-probe epochs (30). */
  k?: number;
  epochs?: number;
}

/** One line of the results table. */
export interface EvalRow {
  /** What was evaluated ('model being trained (step 40)', a file name, 'random init (seed 1)'). */
  model: string;
  protocol: Protocol;
  accuracy: number;
  correct: number;
  total: number;
  /** Linear probe only: accuracy on its own training features. */
  trainAccuracy?: number;
  seconds: number;
  trainImages: number;
  featureDim: number;
}

export interface EvalReport {
  rows: EvalRow[];
  /** The data's name (DataSource.label). */
  data: string;
  architecture: string;
  inputSize: number;
  trainImages: number;
  valImages: number;
  classes: number;
}

export type EvalProgress =
  | { kind: 'load'; loaded: number }
  | { kind: 'features'; row: string; side: 'train' | 'val'; done: number; total: number }
  | { kind: 'probe'; row: string; epoch: number; epochs: number }
  | { kind: 'row'; row: EvalRow };

/** What the host needs from where it runs. */
export interface EvalEnv {
  gpu(): Promise<Gpu>;
  /** The model being trained, if a run exists. */
  live(): { model: SparK; config: SparKConfig; state: TrainerState; step: number } | null;
  readStored(file: string): Promise<Uint8Array>;
  shards(source: DataSource): Shard[];
  decoder(): ImageDecoder;
}

export const RUNNING_REFUSAL =
  'the model being trained is running: press Pause, evaluate, then Resume (the evaluation copies its weights between steps and leaves the run as it was)';

/** Checks a request's numbers before any work (the panel's fields can hold anything). */
export function checkRequest(r: EvalRequest): void {
  if (r.protocol !== 'knn' && r.protocol !== 'linear') throw new Error(`evaluate: protocol must be knn or linear, got '${String(r.protocol)}'`);
  const int = (v: number | undefined, what: string, min: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new Error(`evaluate: ${what} must be a whole number >= ${min}, got ${v}`);
  };
  int(r.trainLimit, 'the training image limit', 1);
  int(r.valLimit, 'the validation image limit', 1);
  int(r.splitSeed, 'the split seed', 0);
  int(r.randomSeed, 'the random-init seed', 0);
  int(r.k, 'k', 1);
  int(r.epochs, 'the probe epochs', 1);
  if (!(r.valFraction > 0 && r.valFraction < 1)) throw new Error(`evaluate: the validation fraction must be between 0 and 1, got ${r.valFraction}`);
}

export class EvalHost {
  private busy = false;

  /** Runs one evaluation; one at a time. Rows are also reported as they finish. */
  async evaluate(env: EvalEnv, request: EvalRequest, onProgress?: (p: EvalProgress) => void): Promise<EvalReport> {
    if (this.busy) throw new Error('evaluate: an evaluation is already running; wait for it to finish');
    checkRequest(request);
    this.busy = true;
    // A page that went away must not make the worker fail: progress is best-effort.
    const report = (p: EvalProgress) => void Promise.resolve(onProgress?.(p)).catch(() => {});
    let ctx: Context | null = null;
    try {
      ctx = new Context(await env.gpu());
      const { model, config, label } = await this.resolve(env, ctx, request.model);
      const size = config.inputSize;
      const load = (source: DataSource, only: 'train' | 'val' | undefined, before: number) =>
        loadLabelledSplit(env.shards(source), env.decoder(), {
          size,
          trainLimit: request.trainLimit,
          valLimit: request.valLimit,
          valFraction: request.valFraction,
          seed: request.splitSeed,
          name: source.label,
          ...(only ? { only } : {}),
          onProgress: (loaded) => report({ kind: 'load', loaded: before + loaded }),
        });
      const valData = request.valData;
      const { train, val } = valData
        ? await load(request.data, 'train', 0).then(async (t) => ({ train: t.train, val: (await load(valData, 'val', t.train.labels.length)).val }))
        : await load(request.data, undefined, 0);
      const rows: EvalRow[] = [];
      const run = async (encoder: SparK, row: string) => {
        const r = await evaluateEncoder(ctx!, encoder.encoder, train, val, {
          protocol: request.protocol,
          size,
          ...(request.k ? { knn: { k: request.k } } : {}),
          linear: { seed: request.splitSeed, ...(request.epochs ? { epochs: request.epochs } : {}) },
          onProgress: (phase, done, total) =>
            report(phase === 'probe' ? { kind: 'probe', row, epoch: done, epochs: total } : { kind: 'features', row, side: phase === 'features-train' ? 'train' : 'val', done, total }),
        });
        const out: EvalRow = {
          model: row,
          protocol: r.protocol,
          accuracy: r.accuracy,
          correct: r.correct,
          total: r.total,
          ...(r.trainAccuracy === undefined ? {} : { trainAccuracy: r.trainAccuracy }),
          seconds: r.seconds.features + r.seconds.probe,
          trainImages: r.trainImages,
          featureDim: r.featureDim,
        };
        rows.push(out);
        report({ kind: 'row', row: out });
      };
      await run(model, label);
      if (request.random) {
        const plain = request.randomPlainInit && modelSpec(config.model).family === 'resnet' ? false : undefined;
        const random = randomModel(ctx, config, request.randomSeed, plain);
        await run(random, `random init (seed ${request.randomSeed}${plain === false ? ', residual branches not zeroed' : ''})`);
      }
      const labels = [...train.labels, ...val.labels];
      return {
        rows,
        data: request.data.label + (valData ? `, validation: ${valData.label}` : ''),
        architecture: describeConfig(config),
        inputSize: size,
        trainImages: train.labels.length,
        valImages: val.labels.length,
        classes: Math.max(...labels) + 1,
      };
    } finally {
      ctx?.dispose();
      this.busy = false;
    }
  }

  /** The chosen weights as a model in `ctx`, its architecture and its row label. */
  private async resolve(env: EvalEnv, ctx: Context, choice: EvalModelChoice): Promise<{ model: SparK; config: SparKConfig; label: string }> {
    if (choice.kind === 'current') {
      const live = env.live();
      if (!live) throw new Error('evaluate: there is no model being trained: start a run, or choose a checkpoint');
      if (live.state === 'running') throw new Error(`evaluate: ${RUNNING_REFUSAL}`);
      const model = await copyOfModel(ctx, live.model, live.config);
      return { model, config: live.config, label: `model being trained (step ${live.step})` };
    }
    const name = choice.kind === 'stored' ? choice.file : choice.name;
    const bytes = choice.kind === 'stored' ? await env.readStored(choice.file) : new Uint8Array(await choice.blob.arrayBuffer());
    const { model, config } = modelFromFile(ctx, bytes, name);
    return { model, config, label: name };
  }
}
