/**
 * Weights in and out of a fine-tuning classifier:
 * - `loadEncoderWeights`: the encoder from a webspark or official SparK checkpoint (keys under
 *   `sparse_encoder.sp_cnn.`) or from an exported encoder / timm-style file (keys as they are;
 *   a head in it is ignored). Strict on the encoder: every key must be there with its shape.
 * - `encodeClassifier` / `readClassifier`: the fine-tuned classifier as safetensors with
 *   timm / torchvision keys (fc.* or norm.* + head.*), num_batches_tracked as int64, and in its
 *   metadata the model description (`webspark.config`), the class names (`webspark.classes`,
 *   a JSON array) and `arch`.
 */
import { CONFIG_KEY, readWeightFile } from '../io/checkpoint-file.ts';
import { ENCODER_PREFIX } from '../io/export.ts';
import { loadStateDict, type NamedArray } from '../io/state-dict.ts';
import { encodeCheckpoint, OPTIMIZER_PREFIX } from '../train/checkpoint.ts';
import type { Classifier, ClassifierConfig } from './classifier.ts';

export const CLASSES_KEY = 'webspark.classes';

/**
 * The class names of a classifier for labelled data: the data's own (ImageFolder's folders)
 * when they cover every label, else the label indices as text. Their count is the class count.
 */
export function classNamesFor(names: readonly string[], ...labelSets: ArrayLike<number>[]): string[] {
  let maxLabel = 0;
  for (const labels of labelSets) for (let i = 0; i < labels.length; i++) maxLabel = Math.max(maxLabel, labels[i]!);
  const classes = Math.max(names.length, maxLabel + 1);
  return names.length === classes ? [...names] : Array.from({ length: classes }, (_, i) => String(i));
}

/** The encoder's arrays of a weight file, under the encoder's own (timm-style) keys. */
export function encoderArrays(arrays: ReadonlyMap<string, NamedArray>, headPrefixes: readonly string[]): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  const spark = [...arrays.keys()].some((k) => k.startsWith(ENCODER_PREFIX));
  for (const [k, v] of arrays) {
    if (spark) {
      if (k.startsWith(ENCODER_PREFIX)) out.set(k.slice(ENCODER_PREFIX.length), v);
    } else if (!k.startsWith(OPTIMIZER_PREFIX) && !headPrefixes.some((p) => k.startsWith(p))) {
      out.set(k, v);
    }
  }
  return out;
}

/** Loads the encoder part of `arrays` into the classifier (the head keeps its initialisation). */
export function loadEncoderWeights(model: Classifier, arrays: ReadonlyMap<string, NamedArray>, name: string): number {
  const enc = encoderArrays(arrays, model.headPrefixes);
  try {
    return loadStateDict(model.encoder, enc).loaded.length;
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`);
  }
}

/** The classifier as safetensors parts (header first). */
export function encodeClassifier(model: Classifier, classNames: readonly string[]): Promise<Uint8Array[]> {
  if (classNames.length !== model.config.classes) throw new Error(`${classNames.length} class names for ${model.config.classes} classes`);
  return encodeCheckpoint(model, null, {
    config: model.config,
    run: { kind: 'classifier' },
    extra: { arch: model.config.model, [CLASSES_KEY]: JSON.stringify(classNames) },
  });
}

export interface ClassifierFile {
  config: ClassifierConfig;
  classNames: string[];
  arrays: Map<string, NamedArray>;
}

/** Reads a classifier written by `encodeClassifier` (a fine-tuning checkpoint works too). */
export function readClassifier(bytes: Uint8Array, name: string): ClassifierFile {
  const file = readWeightFile(bytes, name);
  const raw = file.metadata[CONFIG_KEY];
  const config = raw ? (JSON.parse(raw) as Partial<ClassifierConfig>) : {};
  if (!config.model || !config.classes || !config.inputSize) {
    throw new Error(`${name}: not a webspark classifier (no model, class count and input size in its metadata): give the classifier.safetensors that \`webspark finetune --out DIR\` writes`);
  }
  const names = file.metadata[CLASSES_KEY] ? (JSON.parse(file.metadata[CLASSES_KEY]) as string[]) : [];
  const classNames = names.length === config.classes ? names : Array.from({ length: config.classes }, (_, i) => String(i));
  const arrays = new Map([...file.arrays].filter(([k]) => !k.startsWith(OPTIMIZER_PREFIX)));
  return { config: config as ClassifierConfig, classNames, arrays };
}
