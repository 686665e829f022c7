/**
 * Loads the reference fixtures that tools/make-fixtures.py makes by running the official SparK
 * code (test/fixtures/model/) and builds the same SparK model on the GPU with their weights.
 */
import { readFileSync } from 'node:fs';
import { readSafetensors, toFloat32 } from '../../src/io/safetensors.ts';
import { loadStateDict, type NamedArray } from '../../src/io/state-dict.ts';
import { createSparK, type SparKConfig } from '../../src/models/registry.ts';
import { configFromMetadata } from '../../src/io/checkpoint-file.ts';
import type { SparK } from '../../src/models/spark.ts';
import type { Context } from '../../src/tensor/context.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { nchwToRows } from '../../src/tensor/convert.ts';
import { Rng } from '../../src/util/rng.ts';

const DIR = new URL('../fixtures/model/', import.meta.url);

export interface ModelConfig {
  arch: 'resnet' | 'convnext';
  block?: 'basic' | 'bottleneck';
  stem_width?: number;
  planes?: [number, number, number, number];
  layers?: [number, number, number, number];
  dims?: [number, number, number, number];
  depths?: [number, number, number, number];
  decoder_width: number;
  mask_ratio: number;
}

export interface FixtureCase {
  model: string;
  weights: string;
  outputs: string;
  input_size: number;
  batch: number;
  grid: [number, number];
  mask: number[][];
  loss: { train: number; eval: number };
  /** The official code's float32 losses (its float64 ones are `loss`). */
  loss_torch_fp32: { train: number; eval: number };
  /** Per stored tensor: [max |official float32 - official float64|, max |float64|]. */
  torch_fp32_error: Record<string, [number, number]>;
}

export const manifest = JSON.parse(readFileSync(new URL('manifest.json', DIR), 'utf8')) as {
  models: Record<string, { config: ModelConfig }>;
  fixtures: Record<string, FixtureCase>;
};

export function readArrays(file: string): Map<string, NamedArray> {
  const st = readSafetensors(new Uint8Array(readFileSync(new URL(file, DIR))));
  const out = new Map<string, NamedArray>();
  for (const [name, e] of st.tensors) out.set(name, { shape: e.shape, data: toFloat32(e) });
  return out;
}

/** The fixture's model, described the way its weight files describe it (`spark_config`). */
export function buildModel(ctx: Context, modelName: string, inputSize: number): SparK {
  const config = configFromMetadata({ spark_config: JSON.stringify(manifest.models[modelName]!.config) });
  return createSparK(ctx, new Rng(1), { ...config, inputSize } as SparKConfig);
}

/** Model with the fixture's weights, its input image (dense rows) and its mask. */
export function loadCase(ctx: Context, name: string) {
  const fx = manifest.fixtures[name]!;
  const model = buildModel(ctx, fx.model, fx.input_size);
  loadStateDict(model, readArrays(fx.weights));
  const outputs = readArrays(fx.outputs);
  const [h, w] = fx.grid;
  const mask = new PatchMask(fx.batch, h, w, Uint8Array.from(fx.mask.flat()));
  const size = fx.input_size;
  const layout = SiteLayout.dense(fx.batch, size, size);
  const input = outputs.get('input')!;
  const image: Tensor = ctx.fromArray(nchwToRows(input.data, fx.batch, 3, size, size, layout), [layout.rows, 3], layout);
  return { fx, model, mask, image, outputs };
}
