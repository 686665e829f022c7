/**
 * The encoders the app's Evaluate panel compares, each built in the evaluation's own Context
 * (so the run being trained is never switched to inference mode or changed):
 * - a copy of a live model's weights (the model being trained, read back between steps);
 * - a weight file: webspark's checkpoint, an official SparK `.pth` / `.safetensors`, or an
 *   encoder alone with timm-style keys (`webspark export-encoder`, the app's "encoder" button);
 * - a random initialisation of the same architecture (the baseline pre-training has to beat).
 * Platform-free: the worker and the Node tests use it.
 */
import { readWeightFile } from '../io/checkpoint-file.ts';
import { ENCODER_PREFIX, officialModelArrays } from '../io/export.ts';
import { loadStateDict, readStateDict, type NamedArray } from '../io/state-dict.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import type { SparK } from '../models/spark.ts';
import type { Context } from '../tensor/context.ts';
import { Rng } from '../util/rng.ts';

/** A name for a model config in the results table ('resnet18 (narrow)', 'convnext_atto'). */
export function describeConfig(c: SparKConfig): string {
  return c.resnet || c.convnext ? `${c.model} (narrow)` : c.model;
}

/**
 * The architecture a weight file describes. Official files do not record an input size: narrow
 * test models use 64, full ones 224 (as the masking demo).
 */
export function configOfFile(file: { config: Partial<SparKConfig> }, name: string): SparKConfig {
  const c = file.config;
  if (!c.model) throw new Error(`${name}: the file does not say which model it holds (no arch / config metadata), so its encoder cannot be rebuilt`);
  return { ...c, model: c.model, inputSize: c.inputSize ?? (c.resnet || c.convnext ? 64 : 224) };
}

/**
 * Writes `arrays` into `model`; only the encoder has to be complete (a decoder is not needed for
 * frozen features). Keys without the SparK encoder prefix are read as an encoder export.
 */
export function loadEncoderWeights(model: SparK, arrays: ReadonlyMap<string, NamedArray>, name: string): void {
  let weights = officialModelArrays(arrays);
  if (![...weights.keys()].some((k) => k.startsWith(ENCODER_PREFIX))) {
    weights = new Map([...weights].map(([k, v]) => [ENCODER_PREFIX + k, v]));
  }
  let missing: string[];
  try {
    missing = loadStateDict(model, weights, false).missing.filter((k) => k.startsWith(ENCODER_PREFIX));
  } catch (err) {
    throw new Error(`${name}: its weights do not fit this architecture's encoder: ${(err as Error).message}`);
  }
  if (missing.length > 0) {
    throw new Error(
      `${name}: ${missing.length} encoder weights are missing (${missing.slice(0, 3).map((k) => k.slice(ENCODER_PREFIX.length)).join(', ')}` +
        `${missing.length > 3 ? ', ...' : ''}): it is not a checkpoint of this architecture`,
    );
  }
}

/** A SparK in `ctx` with the weights of a weight file's bytes. */
export function modelFromFile(ctx: Context, bytes: Uint8Array, name: string): { model: SparK; config: SparKConfig } {
  const file = readWeightFile(bytes, name);
  const config = configOfFile(file, name);
  const model = createSparK(ctx, new Rng(0), config);
  loadEncoderWeights(model, file.arrays, name);
  return { model, config };
}

/**
 * A copy of a live model in `ctx`. The reads are queued at once, so they see the weights
 * between two steps; call it only while the live model's trainer is not running.
 */
export async function copyOfModel(ctx: Context, live: SparK, config: SparKConfig): Promise<SparK> {
  const weights = await readStateDict(live);
  const model = createSparK(ctx, new Rng(0), config);
  loadStateDict(model, weights);
  return model;
}

/**
 * A random initialisation of `config`'s architecture. `seed` should differ from the trained
 * model's; `zeroInitLastBn: false` gives the stronger random-conv baseline for ResNets
 * (docs/evaluation.md: with timm's zeroed residual branches a fresh ResNet is nearly blind).
 */
export function randomModel(ctx: Context, config: SparKConfig, seed: number, zeroInitLastBn?: boolean): SparK {
  return createSparK(ctx, new Rng(seed), { ...config, ...(zeroInitLastBn === undefined ? {} : { zeroInitLastBn }) });
}
