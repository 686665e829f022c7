/**
 * The masking demo's side of the worker: reconstructs one image under a mask the user paints,
 * with the model being trained or with an imported checkpoint (webspark's or an official
 * SparK `.pth` / `.safetensors`). Inference only (eval mode, no gradients); everything it
 * records is freed by its tidy scope.
 */
import type { Context } from '../tensor/context.ts';
import { PatchMask, SiteLayout } from '../tensor/layout.ts';
import type { SparK } from '../models/spark.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { officialModelArrays } from '../io/export.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { Rng } from '../util/rng.ts';

export interface DemoModelInfo {
  /** Where the weights come from ('the model being trained' or the file's name). */
  source: string;
  model: string;
  inputSize: number;
  /** Patches per side (input size / 32). */
  fmap: number;
}

export interface DemoResult {
  size: number;
  fmap: number;
  /** Normalized channels-last images [size*size*3], as the trainer's previews. */
  masked: Float32Array;
  reconstruction: Float32Array;
  composite: Float32Array;
  /** Mean squared error of the reconstruction per patch (normalized pixels), [fmap*fmap]. */
  patchError: Float32Array;
  /** The official masked-patch loss of this image and mask (inference mode), as `webspark reconstruct --json` prints it. */
  loss: number;
}

/** Builds a SparK from a weight file's bytes (its config says the architecture). */
export function demoModelFromFile(ctx: Context, bytes: Uint8Array, name: string): { model: SparK; info: DemoModelInfo } {
  const file = readWeightFile(bytes, name);
  const c = file.config;
  if (!c.model) throw new Error(`${name}: the file does not say which model it holds (no arch / config metadata); it cannot be shown in the demo`);
  // Official checkpoints do not record an input size: narrow test models use 64, full ones 224.
  const inputSize = c.inputSize ?? (c.resnet || c.convnext ? 64 : 224);
  const config: SparKConfig = { ...c, model: c.model, inputSize };
  const model = createSparK(ctx, new Rng(0), config);
  try {
    loadStateDict(model, officialModelArrays(file.arrays));
  } catch (err) {
    throw new Error(`${name}: its weights do not fit a ${c.model} SparK model: ${(err as Error).message}`);
  }
  model.eval();
  return { model, info: { source: name, model: c.resnet ? `${c.model} (narrow)` : c.model, inputSize, fmap: model.fmap } };
}

/** Reconstructs `image` ([size*size*3], normalized) with `visible` patches ([fmap*fmap], 1 = shown). */
export async function demoReconstruct(model: SparK, image: Float32Array, visible: Uint8Array): Promise<DemoResult> {
  const ctx = model.ctx;
  const fmap = model.fmap;
  const size = fmap * 32;
  if (image.length !== size * size * 3) throw new Error(`demo: the image has ${image.length} values, the model wants ${size}x${size}x3`);
  if (visible.length !== fmap * fmap) throw new Error(`demo: the mask has ${visible.length} patches, the model wants ${fmap}x${fmap}`);
  const wasTraining = model.training;
  model.eval();
  let reads: Promise<Float32Array>[];
  try {
    reads = ctx.tidy(() => {
      const layout = SiteLayout.dense(1, size, size);
      const x = ctx.fromArray(image, [layout.rows, 3], layout);
      const v = model.visualize(x, new PatchMask(1, fmap, fmap, visible.slice()));
      return [v.masked.read(), v.reconstruction.read(), v.composite.read(), v.loss.read()];
    });
  } finally {
    if (wasTraining) model.train();
  }
  const [masked, reconstruction, composite, loss] = await Promise.all(reads);
  const patchError = new Float32Array(fmap * fmap);
  const per = 32 * 32 * 3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = Math.floor(y / 32) * fmap + Math.floor(x / 32);
      for (let c = 0; c < 3; c++) {
        const i = (y * size + x) * 3 + c;
        const d = reconstruction![i]! - image[i]!;
        patchError[p] = patchError[p]! + (d * d) / per;
      }
    }
  }
  return { size, fmap, masked: masked!, reconstruction: reconstruction!, composite: composite!, patchError, loss: loss![0]! };
}
