/**
 * The Fine-tune panel's side of the worker: a classifier (src/finetune/classifier.ts) trained
 * end to end with `webspark finetune`'s recipe (src/finetune/finetune.ts, planned by
 * src/finetune/plan.ts), its encoder from
 * (a) the model being trained, when its run is paused, stopped or finished (its weights are
 *     read between steps; while a step runs the request is refused: press Pause);
 * (b) a checkpoint from the app's store or a file (webspark's, an official SparK one, or an
 *     exported encoder);
 * (c) a random initialisation of the set-up panel's architecture (the baseline).
 * The labelled images are read as the Evaluate panel reads them (a seeded key split), the label
 * fraction keeps a class-balanced share; at the end the classifier (timm / torchvision keys and
 * the class names) goes to the classifier store. `predict` runs a stored classifier on images.
 *
 * Platform-free apart from what `FinetuneEnv` supplies (the worker: its GPU device, stores and
 * createImageBitmap decoder).
 */
import type { ImageDecoder } from '../data/decoder.ts';
import type { Shard } from '../data/types.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { loadStateDict, readStateDict, type NamedArray } from '../io/state-dict.ts';
import type { SparKConfig } from '../models/registry.ts';
import type { SparK } from '../models/spark.ts';
import { modelFields, modelNameOf } from '../models/zoo.ts';
import { Context } from '../tensor/context.ts';
import type { TrainerState } from '../train/trainer.ts';
import { Rng } from '../util/rng.ts';
import { configOfFile, describeConfig } from '../eval/eval-models.ts';
import { loadLabelledSplit, toRgb } from '../eval/labelled-images.ts';
import { Classifier, type ClassifierConfig } from '../finetune/classifier.ts';
import { Finetuner, type EpochMetrics, type FinetuneOptions } from '../finetune/finetune.ts';
import { optionsFor, planRun } from '../finetune/plan.ts';
import { evalCropBox, predictImages, type Prediction } from '../finetune/predict.ts';
import { labelFraction } from '../finetune/sampling.ts';
import { classNamesFor, encodeClassifier, loadEncoderWeights, readClassifier } from '../finetune/weights.ts';
import type { ClassifierEntry } from '../platform/browser/classifier-store.ts';
import type { EvalModelChoice } from './eval-host.ts';
import type { DataSource } from './protocol.ts';

/** Where the encoder's weights come from. */
export type FinetuneModelChoice = EvalModelChoice | { kind: 'random'; model: string; inputSize: number; plainInit: boolean };

export interface FinetuneRequest {
  model: FinetuneModelChoice;
  data: DataSource;
  /** The seeded key split (as the Evaluate panel and `webspark finetune`: 0.2, seed 0). */
  valFraction: number;
  splitSeed: number;
  trainLimit: number;
  valLimit: number;
  /** Class-balanced share of the training images kept (seeded by `recipe.seed`). */
  labelFraction: number;
  epochs: number;
  recipe: Omit<FinetuneOptions, 'totalSteps' | 'warmupSteps'>;
}

export type FinetuneProgress =
  | { kind: 'load'; loaded: number }
  | { kind: 'start'; totalSteps: number; stepsPerEpoch: number; batchSize: number; keptImages: number; trainImages: number; valImages: number; classes: number }
  | { kind: 'step'; step: number; totalSteps: number; loss: number; lr: number }
  | { kind: 'epoch'; metrics: EpochMetrics };

export interface FinetuneReport {
  classifier: ClassifierEntry;
  epochs: EpochMetrics[];
  architecture: string;
  steps: number;
}

/** What the host needs from where it runs. */
export interface FinetuneEnv {
  gpu(): Promise<Gpu>;
  live(): { model: SparK; config: SparKConfig; state: TrainerState; step: number } | null;
  readStored(file: string): Promise<Uint8Array>;
  shards(source: DataSource): Shard[];
  /** Class names the data carries (ImageFolder's folders); empty when it gives indices only. */
  classNames(source: DataSource): string[];
  decoder(): ImageDecoder;
  saveClassifier(parts: Uint8Array[], info: Omit<ClassifierEntry, 'file' | 'bytes' | 'savedAt'>): Promise<ClassifierEntry>;
  readClassifier(file: string): Promise<Uint8Array>;
}

export const FINETUNE_RUNNING_REFUSAL =
  'the model being trained is running: press Pause, fine-tune, then Resume (fine-tuning copies its weights between steps and leaves the run as it was)';

/** Checks a request's numbers before any work (the panel's fields can hold anything). */
export function checkFinetuneRequest(r: FinetuneRequest): void {
  const int = (v: number, what: string, min: number) => {
    if (!(Number.isInteger(v) && v >= min)) throw new Error(`fine-tune: ${what} must be a whole number >= ${min}, got ${v}`);
  };
  int(r.trainLimit, 'the training image limit', 2);
  int(r.valLimit, 'the validation image limit', 1);
  int(r.recipe.batchSize, 'the batch size', 2);
  int(r.recipe.seed, 'the seed', 0);
  if (!(r.labelFraction > 0 && r.labelFraction <= 1)) throw new Error(`fine-tune: the label fraction must be in (0, 1], got ${r.labelFraction}`);
  if (!(r.valFraction > 0 && r.valFraction < 1)) throw new Error(`fine-tune: the validation fraction must be between 0 and 1, got ${r.valFraction}`);
  if (!(r.epochs > 0)) throw new Error(`fine-tune: epochs must be > 0, got ${r.epochs}`);
  for (const [v, what] of [[r.recipe.baseLr, 'the base lr'], [r.recipe.weightDecay, 'the weight decay'], [r.recipe.labelSmoothing, 'the label smoothing']] as const) {
    if (!(v >= 0 && Number.isFinite(v))) throw new Error(`fine-tune: ${what} must be a number >= 0, got ${v}`);
  }
  if (!(r.recipe.layerDecay > 0 && r.recipe.layerDecay <= 1)) throw new Error(`fine-tune: the layer decay must be in (0, 1], got ${r.recipe.layerDecay}`);
}

/** The encoder's starting point: the architecture, its weights (none: random) and a name for it. */
interface Start {
  config: Omit<ClassifierConfig, 'classes'>;
  arrays: ReadonlyMap<string, NamedArray> | null;
  from: string;
}

export class FinetuneHost {
  private busy = false;
  private stopAsked = false;

  /** Ends the running fine-tuning after its current step; nothing is stored. */
  stop(): void {
    this.stopAsked = true;
  }

  async finetune(env: FinetuneEnv, request: FinetuneRequest, onProgress?: (p: FinetuneProgress) => void): Promise<FinetuneReport> {
    if (this.busy) throw new Error('fine-tune: a fine-tuning run is already going; wait for it or press Stop');
    checkFinetuneRequest(request);
    this.busy = true;
    this.stopAsked = false;
    // A page that went away must not make the worker fail: progress is best-effort.
    const report = (p: FinetuneProgress) => void Promise.resolve(onProgress?.(p)).catch(() => {});
    let ctx: Context | null = null;
    try {
      const start = await this.start(env, request.model);
      const size = start.config.inputSize;
      const { train, val } = await loadLabelledSplit(env.shards(request.data), env.decoder(), {
        size,
        trainLimit: request.trainLimit,
        valLimit: request.valLimit,
        valFraction: request.valFraction,
        seed: request.splitSeed,
        name: request.data.label,
        onProgress: (loaded) => report({ kind: 'load', loaded }),
      });
      const classNames = classNamesFor(env.classNames(request.data), train.labels, val.labels);
      const classes = classNames.length;
      const kept = labelFraction(train.labels, request.labelFraction, request.recipe.seed);
      const plan = planRun(kept.length, request.recipe.batchSize, { epochs: request.epochs });
      const options = optionsFor(request.recipe, plan);
      ctx = new Context(await env.gpu());
      const rng = new Rng(options.seed);
      const model = new Classifier(ctx, rng, { ...start.config, classes });
      if (start.arrays) loadEncoderWeights(model, start.arrays, start.from);
      const tuner = new Finetuner(ctx, model, rng, train, kept, val, options);
      report({ kind: 'start', totalSteps: plan.totalSteps, stepsPerEpoch: plan.stepsPerEpoch, batchSize: tuner.batchSize, keptImages: kept.length, trainImages: train.labels.length, valImages: val.labels.length, classes });
      const epochs = await tuner.run(
        {
          step: (step, loss, lr) => report({ kind: 'step', step, totalSteps: plan.totalSteps, loss, lr }),
          epoch: (metrics) => report({ kind: 'epoch', metrics }),
        },
        () => this.stopAsked,
      );
      if (this.stopAsked) throw new Error(`fine-tune: stopped at step ${tuner.step} of ${plan.totalSteps}; no classifier was stored`);
      const entry = await env.saveClassifier(await encodeClassifier(model, classNames), {
        model: modelNameOf(start.config),
        classNames,
        inputSize: size,
        from: start.from,
        data: request.data.label,
        labelFraction: request.labelFraction,
        trainImages: kept.length,
        valTop1: epochs[epochs.length - 1]?.valTop1 ?? NaN,
      });
      return { classifier: entry, epochs, architecture: describeConfig({ ...start.config }), steps: tuner.step };
    } finally {
      ctx?.dispose();
      this.busy = false;
    }
  }

  /** Top-5 classes of each image under a stored classifier (timm's evaluation crop). */
  async predict(env: FinetuneEnv, file: string, images: { name: string; blob: Blob }[]): Promise<Prediction[]> {
    if (images.length === 0) throw new Error('predict: drop or choose one or more images first');
    const { config, classNames, arrays } = readClassifier(await env.readClassifier(file), file);
    const size = config.inputSize;
    const decoder = env.decoder();
    const decoded = await Promise.all(
      images.map(async ({ name, blob }) => {
        const format = (/\.([a-z0-9]+)$/i.exec(name)?.[1] ?? '').toLowerCase();
        try {
          const d = await decoder.decode(new Uint8Array(await blob.arrayBuffer()), format, size, (w, h) => evalCropBox(w, h, size));
          return { name, rgb: toRgb(d.pixels, decoder.channels) };
        } catch (e) {
          throw new Error(`predict: ${name}: cannot decode it as an image (${(e as Error).message})`);
        }
      }),
    );
    const ctx = new Context(await env.gpu());
    try {
      const model = new Classifier(ctx, new Rng(0), config);
      loadStateDict(model, arrays);
      return await predictImages(ctx, model, classNames, decoded);
    } finally {
      ctx.dispose();
    }
  }

  private async start(env: FinetuneEnv, choice: FinetuneModelChoice): Promise<Start> {
    const fromSpark = (c: SparKConfig) => ({
      model: c.model,
      inputSize: c.inputSize,
      ...(c.resnet ? { resnet: c.resnet } : {}),
      ...(c.convnext ? { convnext: c.convnext } : {}),
    });
    if (choice.kind === 'random') {
      const config = { ...modelFields(choice.model), inputSize: choice.inputSize, ...(choice.plainInit ? { zeroInitLastBn: false } : {}) };
      return { config, arrays: null, from: `random init${choice.plainInit ? ' (residual branches not zeroed)' : ''}` };
    }
    if (choice.kind === 'current') {
      const live = env.live();
      if (!live) throw new Error('fine-tune: there is no model being trained: start a run, or choose a checkpoint or random init');
      if (live.state === 'running') throw new Error(`fine-tune: ${FINETUNE_RUNNING_REFUSAL}`);
      return { config: fromSpark(live.config), arrays: await readStateDict(live.model), from: `model being trained (step ${live.step})` };
    }
    const name = choice.kind === 'stored' ? choice.file : choice.name;
    const bytes = choice.kind === 'stored' ? await env.readStored(choice.file) : new Uint8Array(await choice.blob.arrayBuffer());
    const file = readWeightFile(bytes, name);
    return { config: fromSpark(configOfFile(file, name)), arrays: file.arrays, from: name };
  }
}
