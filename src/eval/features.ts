/**
 * Frozen-encoder features for evaluation: the dense image (no mask) through the encoder in
 * inference mode (BatchNorm on running statistics, nothing recorded), then the global average
 * of the last stage's feature map, one C-vector per image. Batched; each batch runs in its own
 * tidy scope, so GPU memory stays bounded by one batch.
 */
import { normalizeRgb } from '../data/imagenet.ts';
import type { Encoder } from '../models/spark.ts';
import type { Context } from '../tensor/context.ts';
import { SiteLayout } from '../tensor/layout.ts';

export interface FeatureSet {
  /** n x dim, row-major. */
  features: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

export interface ExtractOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Mean over each image's sites of rows [B*h*w, C] -> [B, C]. */
export function globalAverage(rows: Float32Array, batch: number, channels: number): Float32Array {
  const sites = rows.length / (batch * channels);
  if (!Number.isInteger(sites)) throw new Error(`globalAverage: ${rows.length} values are not ${batch} images of ${channels} channels`);
  const out = new Float32Array(batch * channels);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < sites; s++) {
      const base = (b * sites + s) * channels;
      for (let c = 0; c < channels; c++) out[b * channels + c]! += rows[base + c]!;
    }
    for (let c = 0; c < channels; c++) out[b * channels + c]! /= sites;
  }
  return out;
}

/**
 * images: n x size x size x 3 RGB bytes (HWC per image). Returns n x C features, C the last
 * stage's width. The encoder is switched to inference mode and left there.
 */
export async function extractFeatures(
  ctx: Context,
  encoder: Encoder,
  images: Uint8Array,
  labels: Int32Array,
  size: number,
  options: ExtractOptions = {},
): Promise<FeatureSet> {
  const per = size * size * 3;
  const n = images.length / per;
  if (!Number.isInteger(n) || n !== labels.length) {
    throw new Error(`extractFeatures: ${images.length} bytes are not ${labels.length} images of ${size}x${size}x3`);
  }
  if (size % encoder.downsampleRatio) throw new Error(`extractFeatures: input size ${size} is not a multiple of ${encoder.downsampleRatio}`);
  const dim = encoder.featureChannels[encoder.featureChannels.length - 1]!;
  const batchSize = Math.max(1, options.batchSize ?? 32);
  encoder.eval();
  const features = new Float32Array(n * dim);
  for (let start = 0; start < n; start += batchSize) {
    const b = Math.min(batchSize, n - start);
    const read = ctx.tidy(() =>
      ctx.noGrad(() => {
        const layout = SiteLayout.dense(b, size, size);
        const x = ctx.fromArray(normalizeRgb(images.subarray(start * per, (start + b) * per)), [layout.rows, 3], layout);
        const last = encoder.forward(x).at(-1)!;
        return last.read();
      }),
    );
    features.set(globalAverage(await read, b, dim), start * dim);
    options.onProgress?.(start + b, n);
  }
  return { features, labels, n, dim };
}
