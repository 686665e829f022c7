/**
 * Fine-tuning a classifier end to end on labelled images held in memory: RandomResizedCrop +
 * flip (src/finetune/augment.ts), label-smoothed cross-entropy, AdamW with layer-wise lr
 * decay and no weight decay on norms and biases (src/finetune/optimizer.ts), SparK's warm-up
 * then cosine lr (src/optim/schedule.ts) at peak = base lr x batch / 256, BatchNorm on batch
 * statistics while training. Each epoch ends with the validation top-1 / top-5 (BatchNorm on
 * running statistics, the whole image at the input size).
 *
 * A step is a function of the seed and the step number only (which images, their crops and
 * flips), and the model's random state travels in the checkpoint, so `restore` + `run`
 * continues a run exactly. Epochs drop their last incomplete batch (BatchNorm needs > 1 row).
 */
import type { Context } from '../tensor/context.ts';
import { flipNormalize } from '../ops/augment.ts';
import { crossEntropy } from '../ops/cross-entropy.ts';
import { lrAt, type ScheduleConfig } from '../optim/schedule.ts';
import type { NamedArray } from '../io/state-dict.ts';
import { encodeCheckpoint, restoreCheckpoint } from '../train/checkpoint.ts';
import type { Rng } from '../util/rng.ts';
import { augmentBatch } from './augment.ts';
import type { Classifier } from './classifier.ts';
import { lrScale } from './layer-decay.ts';
import { accuracyOf } from './metrics.ts';
import { LayerwiseAdamW } from './optimizer.ts';
import { epochOrder } from './sampling.ts';

/** Images as the labelled loaders hold them: n x size x size x 3 RGB bytes and n labels. */
export interface LabelledData {
  images: Uint8Array;
  labels: Int32Array;
}

export interface FinetuneOptions {
  batchSize: number;
  totalSteps: number;
  warmupSteps: number;
  /** Peak lr = baseLr x batchSize / 256. */
  baseLr: number;
  weightDecay: number;
  /** Layer-wise lr decay (1 = the same lr everywhere). */
  layerDecay: number;
  labelSmoothing: number;
  seed: number;
}

export interface EpochMetrics {
  epoch: number;
  /** Steps done at the end of the epoch. */
  step: number;
  trainLoss: number;
  valTop1: number;
  valTop5: number;
  valLoss: number;
  valImages: number;
  lr: number;
  seconds: number;
}

export interface FinetuneEvents {
  step?: (step: number, loss: number, lr: number) => void;
  epoch?: (m: EpochMetrics) => void;
  /** Called with a checkpoint's parts at the end of each epoch (and of the run). */
  checkpoint?: (step: number, parts: Uint8Array[]) => Promise<void> | void;
}

/** Most consecutive steps with non-finite gradients before the run stops. */
const MAX_SKIPS = 5;
const EVAL_BATCH = 64;

export class Finetuner {
  step = 0;
  readonly stepsPerEpoch: number;
  readonly batchSize: number;
  private opt: LayerwiseAdamW;
  private schedule: ScheduleConfig;

  constructor(
    readonly ctx: Context,
    readonly model: Classifier,
    private modelRng: Rng,
    private train: LabelledData,
    /** Indices of the training images used (the label fraction). */
    private indices: readonly number[],
    private val: LabelledData | null,
    readonly options: FinetuneOptions,
  ) {
    if (indices.length < 2) throw new Error(`fine-tuning needs at least 2 training images, got ${indices.length}`);
    this.batchSize = Math.min(options.batchSize, indices.length);
    this.stepsPerEpoch = Math.floor(indices.length / this.batchSize);
    this.opt = new LayerwiseAdamW(ctx, model.namedParameters(), (name) => lrScale(model.family, name, options.layerDecay));
    this.schedule = {
      baseLr: options.baseLr,
      batchSize: this.batchSize,
      warmupIters: options.warmupSteps,
      totalIters: options.totalSteps,
      wd: options.weightDecay,
      wdEnd: options.weightDecay,
    };
  }

  get size(): number {
    return this.model.config.inputSize;
  }

  /** The lr multipliers of the layer groups, head first. */
  get lrScales(): number[] {
    return this.opt.scales;
  }

  lrAt(step: number): number {
    return lrAt(this.schedule, step);
  }

  /** One optimisation step; resolves to its loss (label-smoothed, as trained). */
  async trainStep(): Promise<number> {
    const size = this.size;
    const B = this.batchSize;
    const epoch = Math.floor(this.step / this.stepsPerEpoch);
    const first = (this.step % this.stepsPerEpoch) * B;
    const order = epochOrder(this.indices.length, this.options.seed, epoch);
    const picks = order.slice(first, first + B).map((k) => this.indices[k]!);
    const { pixels, flips } = augmentBatch(this.train.images, size, picks, this.options.seed, epoch, first);
    const labels = picks.map((i) => this.train.labels[i]!);
    const loss = this.stepOn(pixels, flips, labels, this.lrAt(this.step));
    this.step++;
    return loss;
  }

  /**
   * Forward, backward and the optimizer update on one batch of input-size RGB bytes (flips
   * and ImageNet normalisation applied on the GPU) at learning rate `lr`; resolves to the loss.
   * Gradients stay in the parameters' `.grad` until the next step.
   */
  async stepOn(pixels: Uint8Array, flips: Uint8Array, labels: readonly number[], lr: number): Promise<number> {
    const { ctx, model, size } = this;
    model.train();
    const read = ctx.tidy(() => {
      ctx.zeroGrad(model.parameters());
      const x = flipNormalize(ctx, pixels, flips, { batch: labels.length, height: size, width: size, channels: 3 });
      const loss = crossEntropy(model.forward(x), labels, this.options.labelSmoothing);
      ctx.backward(loss);
      this.opt.step(lr, this.options.weightDecay);
      return loss.read();
    });
    return (await read)[0]!;
  }

  /** Top-1 / top-5 and mean cross-entropy of `data` (inference mode, no augmentation). */
  async evaluate(data: LabelledData): Promise<{ top1: number; top5: number; loss: number; total: number }> {
    const { ctx, model, size } = this;
    const per = size * size * 3;
    const n = data.labels.length;
    const K = model.config.classes;
    let top1 = 0;
    let top5 = 0;
    let lossSum = 0;
    model.eval();
    for (let start = 0; start < n; start += EVAL_BATCH) {
      const b = Math.min(EVAL_BATCH, n - start);
      const logits = await ctx.tidy(() =>
        ctx.noGrad(() => {
          const x = flipNormalize(ctx, data.images.subarray(start * per, (start + b) * per), new Uint8Array(b), { batch: b, height: size, width: size, channels: 3 });
          return model.forward(x).read();
        }),
      );
      const a = accuracyOf(logits, data.labels.subarray(start, start + b), K);
      top1 += a.top1;
      top5 += a.top5;
      lossSum += a.lossSum;
    }
    model.train();
    return { top1: top1 / Math.max(1, n), top5: top5 / Math.max(1, n), loss: lossSum / Math.max(1, n), total: n };
  }

  /**
   * Trains to `options.totalSteps`, evaluating and checkpointing at the end of every
   * `evalEvery`-th epoch (0: none before the end) and at the last step; a row's train loss and
   * seconds cover the epochs since the previous row. `stop()` returning true ends the run
   * after the current step.
   */
  async run(events: FinetuneEvents = {}, stop: () => boolean = () => false, evalEvery = 1): Promise<EpochMetrics[]> {
    if (!Number.isInteger(evalEvery) || evalEvery < 0) throw new Error(`evaluation every N epochs: N must be a whole number >= 0, got ${evalEvery}`);
    const out: EpochMetrics[] = [];
    let lossSum = 0;
    let lossCount = 0;
    let skips = 0;
    let epochStart = performance.now();
    while (this.step < this.options.totalSteps && !stop()) {
      const lr = this.lrAt(this.step);
      const loss = await this.trainStep();
      if (await this.opt.skipped()) {
        if (++skips >= MAX_SKIPS) throw new Error(`${skips} steps in a row had non-finite gradients (loss ${loss}): lower --base-lr`);
      } else {
        skips = 0;
        lossSum += loss;
        lossCount++;
      }
      events.step?.(this.step - 1, loss, lr);
      const last = this.step === this.options.totalSteps;
      const epochsDone = this.step / this.stepsPerEpoch;
      const due = Number.isInteger(epochsDone) && evalEvery > 0 && epochsDone % evalEvery === 0;
      if (!last && !due) continue;
      const v = this.val ? await this.evaluate(this.val) : { top1: NaN, top5: NaN, loss: NaN, total: 0 };
      const m: EpochMetrics = {
        epoch: Math.ceil(this.step / this.stepsPerEpoch),
        step: this.step,
        trainLoss: lossSum / Math.max(1, lossCount),
        valTop1: v.top1,
        valTop5: v.top5,
        valLoss: v.loss,
        valImages: v.total,
        lr,
        seconds: (performance.now() - epochStart) / 1000,
      };
      out.push(m);
      events.epoch?.(m);
      if (events.checkpoint) await events.checkpoint(this.step, await this.checkpoint());
      lossSum = 0;
      lossCount = 0;
      epochStart = performance.now();
    }
    return out;
  }

  /** Model, optimizer state and what a resumed run must agree on, as safetensors parts. */
  checkpoint(extra: Record<string, string> = {}): Promise<Uint8Array[]> {
    return encodeCheckpoint(this.model, this.opt, {
      config: this.model.config,
      run: { kind: 'finetune', step: this.step, rng: this.modelRng.state, trainImages: this.indices.length, options: this.options },
      extra,
    });
  }

  /** Continues the run a checkpoint of `checkpoint()` left; throws if the run it describes differs. */
  restore(arrays: ReadonlyMap<string, NamedArray>, metadata: Record<string, string>): void {
    const run = JSON.parse(metadata['webspark.run'] ?? '{}') as { kind?: string; step?: number; rng?: number; trainImages?: number; options?: FinetuneOptions };
    if (run.kind !== 'finetune') throw new Error('not a fine-tuning checkpoint: --resume takes a checkpoint-*.safetensors of `webspark finetune` (start from a pre-training checkpoint with --checkpoint)');
    if (run.trainImages !== this.indices.length) {
      throw new Error(`the checkpoint's run trained on ${run.trainImages} images, this one has ${this.indices.length}: give the same --data, --label-fraction and --seed`);
    }
    for (const key of ['batchSize', 'seed', 'totalSteps', 'baseLr', 'layerDecay'] as const) {
      if (run.options?.[key] !== this.options[key]) throw new Error(`the checkpoint's run has ${key} ${run.options?.[key]}, this one ${this.options[key]}: resume with the same options`);
    }
    restoreCheckpoint(arrays, metadata, this.model, this.opt);
    this.step = run.step ?? 0;
    if (typeof run.rng === 'number') this.modelRng.state = run.rng;
  }
}
