/**
 * A fine-tuning run in Node, what `webspark finetune` calls: labelled data read as `eval`
 * reads it (WebDataset .cls, ImageFolder, parquet; a seeded key split or --val-data), the
 * label fraction, the classifier initialised from a checkpoint / an exported encoder or at
 * random, training with a metrics.jsonl line and a checkpoint per epoch (atomic, newest 3
 * kept), `resume` from such a checkpoint, and DIR/classifier.safetensors at the end.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeGpu } from './gpu.ts';
import { NodeCheckpointStore } from './checkpoint-store.ts';
import { loadLabelledImages, type LabelledImages } from './labelled-images.ts';
import { readWeightFile, type WeightFile } from '../../io/checkpoint-file.ts';
import { contextFor, parsePrecision, precisionLine } from '../../train/precision-choice.ts';
import { Rng } from '../../util/rng.ts';
import { peakLr } from '../../optim/schedule.ts';
import { Classifier, type ClassifierConfig } from '../../finetune/classifier.ts';
import { Finetuner, type EpochMetrics, type FinetuneOptions } from '../../finetune/finetune.ts';
import { labelFraction } from '../../finetune/sampling.ts';
import { optionsFor, planRun } from '../../finetune/plan.ts';
import { classNamesFor, encodeClassifier, loadEncoderWeights } from '../../finetune/weights.ts';
import { modelFields, modelNameOf } from '../../models/zoo.ts';

export interface FinetuneRun {
  data: string;
  valData?: string;
  valFraction: number;
  splitSeed: number;
  limit?: number;
  valLimit?: number;
  labelFraction: number;
  /** Initial weights (a SparK checkpoint or an exported encoder); none with randomInit. */
  checkpoint?: string;
  randomInit: boolean;
  model?: string;
  inputSize?: number;
  dropPathRate?: number;
  /** ResNets at random init: false keeps the last BatchNorm of each residual branch at 1 (timm zeroes it). */
  zeroInitLastBn?: boolean;
  /** A checkpoint of an earlier `finetune` run to continue. */
  resume?: string;
  out: string;
  /** Epochs between validations and checkpoints (0: only at the end); default 1. */
  evalEvery?: number;
  /** Either steps, or epochs over the (label-fraction) training images. */
  steps?: number;
  epochs: number;
  /** Linear warm-up; default one epoch, at most a tenth of the run. */
  warmupEpochs?: number;
  train: Omit<FinetuneOptions, 'totalSteps' | 'warmupSteps'>;
  /** `f32` or `f16` storage of activations; default by the adapter (src/train/precision-choice.ts). */
  precision?: string;
}

export interface RunEvents {
  log: (line: string) => void;
  step?: (step: number, total: number, loss: number, lr: number) => void;
  epoch?: (m: EpochMetrics) => void;
}

export interface RunResult {
  epochs: EpochMetrics[];
  classifier: string;
  trainImages: number;
  steps: number;
}

function readFile(path: string): WeightFile {
  return readWeightFile(new Uint8Array(readFileSync(path)), path);
}

/** The classifier's description: from the flags, else from the file the weights come from. */
function classifierConfig(run: FinetuneRun, from: WeightFile | null, classes: number): ClassifierConfig {
  const c = (from?.config ?? {}) as Partial<ClassifierConfig> & { arch?: string };
  // `--model tiny` names a narrow ResNet-18 (zoo.ts): its name is resnet18's with the layout given.
  const named = run.model === undefined ? null : modelFields(run.model);
  const model = named?.model ?? c.model ?? from?.metadata.arch;
  if (!model) throw new Error(`${run.checkpoint ?? '--random-init'}: which model? pass --model`);
  const inputSize = run.inputSize ?? c.inputSize ?? 64;
  if (inputSize % 32) throw new Error(`--input-size must be a multiple of 32, got ${inputSize}`);
  const config: ClassifierConfig = { model, classes, inputSize };
  // A narrow architecture recorded in the file (test models) is kept, unless --model changes the name.
  if (named?.resnet) config.resnet = named.resnet;
  else if (!run.model || run.model === c.model) {
    if (c.resnet) config.resnet = c.resnet;
    if (c.convnext) config.convnext = c.convnext;
  }
  if (run.dropPathRate !== undefined) config.dropPathRate = run.dropPathRate;
  if (run.zeroInitLastBn === false) config.zeroInitLastBn = false;
  return config;
}

async function loadData(run: FinetuneRun, size: number): Promise<{ train: LabelledImages; val: LabelledImages }> {
  const split = { valFraction: run.valFraction, seed: run.splitSeed };
  const train = await loadLabelledImages(run.data, { size, ...(run.limit ? { limit: run.limit } : {}), ...(run.valData ? {} : { split: { side: 'train', ...split } }) });
  const valLimit = run.valLimit ? { limit: run.valLimit } : {};
  const val = run.valData
    ? await loadLabelledImages(run.valData, { size, ...valLimit })
    : await loadLabelledImages(run.data, { size, ...valLimit, split: { side: 'val', ...split } });
  return { train, val };
}

function recordedOptions(file: WeightFile, name: string): FinetuneOptions {
  const run = JSON.parse(file.metadata['webspark.run'] ?? '{}') as { kind?: string; options?: FinetuneOptions };
  if (run.kind !== 'finetune' || !run.options) {
    throw new Error(`${name}: not a fine-tuning checkpoint: --resume takes a checkpoint-*.safetensors of \`webspark finetune\` (start from a pre-training checkpoint with --checkpoint)`);
  }
  return run.options;
}

function writeAtomic(path: string, parts: readonly Uint8Array[]): void {
  const tmp = `${path}.partial-${process.pid}`;
  writeFileSync(tmp, Buffer.concat(parts));
  renameSync(tmp, path);
}

export async function runFinetune(run: FinetuneRun, events: RunEvents): Promise<RunResult> {
  const resumeFile = run.resume ? readFile(run.resume) : null;
  const initFile = run.checkpoint && !run.randomInit ? readFile(run.checkpoint) : null;
  if (!resumeFile && !initFile && !run.randomInit) throw new Error('give --checkpoint FILE (pre-trained weights), --random-init with --model, or --resume FILE');
  const sizeHint = run.inputSize ?? (resumeFile ?? initFile)?.config.inputSize ?? 64;
  const { train, val } = await loadData(run, sizeHint);
  const classNames = classNamesFor(train.classes, train.labels, val.labels);
  const classes = classNames.length;
  const config = classifierConfig(run, resumeFile ?? initFile, classes);
  if (config.inputSize !== sizeHint) throw new Error(`input size ${config.inputSize} differs from the ${sizeHint} px the data was read at`);
  // A resumed run keeps the recipe its checkpoint records (the flags' values are not used).
  const resumed = resumeFile ? recordedOptions(resumeFile, run.resume!) : null;
  const indices = labelFraction(train.labels, run.labelFraction, resumed?.seed ?? run.train.seed);
  const length = { epochs: run.epochs, ...(run.steps !== undefined ? { steps: run.steps } : {}), ...(run.warmupEpochs !== undefined ? { warmupEpochs: run.warmupEpochs } : {}) };
  const plan = planRun(indices.length, resumed?.batchSize ?? run.train.batchSize, length);
  const stepsPerEpoch = plan.stepsPerEpoch;
  const options: FinetuneOptions = resumed ?? optionsFor(run.train, plan);

  mkdirSync(run.out, { recursive: true });
  const store = new NodeCheckpointStore(run.out);
  const metricsPath = join(run.out, 'metrics.jsonl');
  parsePrecision(run.precision);
  const gpu = await createNodeGpu();
  const { ctx, choice } = contextFor(gpu, run.precision);
  try {
    // Fine-tuning has no loss scaling: its optimizer groups each decide their own skip.
    events.log(precisionLine(choice, false));
    const rng = new Rng(options.seed);
    const model = new Classifier(ctx, rng, config);
    const tuner = new Finetuner(ctx, model, rng, train, indices, val, options);
    if (resumeFile) {
      tuner.restore(resumeFile.arrays, resumeFile.metadata);
      events.log(`resumed from ${run.resume} at step ${tuner.step} of ${options.totalSteps}, with the recipe it records`);
    } else if (initFile) {
      const n = loadEncoderWeights(model, initFile.arrays, run.checkpoint!);
      events.log(`encoder initialised from ${run.checkpoint} (${n} tensors); the head starts at random`);
    }
    events.log(
      `${gpu.adapter.isFallbackAdapter ? 'software adapter (slow): ' : ''}${modelNameOf(config)} @${config.inputSize}px, ${classes} classes, ` +
        `${indices.length} of ${train.labels.length} training images (label fraction ${run.labelFraction}), ${val.labels.length} validation images; ` +
        `batch ${tuner.batchSize}, ${options.totalSteps} steps (${stepsPerEpoch} per epoch), peak lr ${peakLr(options.baseLr, tuner.batchSize).toExponential(2)}, ` +
        `${options.warmupSteps} warm-up steps, layer decay ${options.layerDecay} (lr x ${tuner.lrScales.map((s) => s.toPrecision(2)).join(', ')})`,
    );
    const epochs = await tuner.run({
      step: (s, loss, lr) => events.step?.(s, options.totalSteps, loss, lr),
      epoch: (m) => {
        appendFileSync(metricsPath, `${JSON.stringify(m)}\n`);
        events.epoch?.(m);
      },
      checkpoint: (step, parts) => void store.save(step, parts),
    }, () => false, run.evalEvery ?? 1);
    const classifier = join(run.out, 'classifier.safetensors');
    writeAtomic(classifier, await encodeClassifier(model, classNames));
    return { epochs, classifier, trainImages: indices.length, steps: tuner.step };
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
