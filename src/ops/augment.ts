/**
 * The GPU half of data augmentation (shaders/augment.wgsl): uint8 crops go up as bytes, and
 * one dispatch flips the chosen images and applies ImageNet's mean/std normalisation, giving
 * the dense [B*H*W, 3] feature map (channels last, SiteLayout.dense(B, H, W)) the model reads.
 * The input is data, so nothing is recorded on the tape.
 */
import type { Batch } from '../data/loader.ts';
import type { Context } from '../tensor/context.ts';
import { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { params } from './params.ts';

const WG = 256;


export interface PixelShape {
  batch: number;
  height: number;
  width: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA; alpha ignored). */
  channels: 3 | 4;
}

/** Flips (where `flips[b]` is 1) and normalises `pixels` (B x H x W x C bytes) into a feature map. */
export function flipNormalize(ctx: Context, pixels: Uint8Array, flips: Uint8Array, shape: PixelShape): Tensor {
  const { batch, height, width, channels } = shape;
  const rows = batch * height * width;
  if (pixels.length !== rows * channels) {
    throw new Error(`flipNormalize: ${pixels.length} bytes for ${batch}x${height}x${width}x${channels}`);
  }
  if (flips.length !== batch) throw new Error(`flipNormalize: ${flips.length} flip flags for a batch of ${batch}`);
  const gpu = ctx.gpu;
  const src = gpu.upload(pixels, 'augment-pixels');
  const flags = gpu.upload(Uint32Array.from(flips), 'augment-flips');
  const y = ctx.empty([rows, 3], SiteLayout.dense(batch, height, width));
  const p = gpu.pipeline('augment', 'flip_normalize');
  const u = params().u32(batch).u32(height).u32(width).u32(channels).build();
  gpu.dispatch(p, { pixels: src, flips: flags, y: y.buffer }, u, gpu.grid(Math.ceil(rows / WG)));
  // Safe right away: a released buffer is only overwritten by commands recorded later.
  gpu.release(src);
  gpu.release(flags);
  return y;
}

/** A loader batch as the model's input feature map. */
export function batchToTensor(ctx: Context, batch: Batch): Tensor {
  return flipNormalize(ctx, batch.pixels, batch.flips, {
    batch: batch.batch,
    height: batch.size,
    width: batch.size,
    channels: batch.channels,
  });
}
