/**
 * The GPU half of data augmentation (shaders/augment.wgsl): uint8 crops go up as bytes, and
 * one dispatch flips the chosen images and applies ImageNet's mean/std normalisation, giving
 * the dense [B*H*W, 3] feature map (channels last, SiteLayout.dense(B, H, W)) the model reads.
 * The input is data, so nothing is recorded on the tape.
 */
import type { Context } from '../tensor/context.ts';
import { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';

const WG = 256;
/**
 * Runs of four pixels each thread of flip_normalize4 makes. On SwiftShader, 8 (14 for 224 px
 * would divide evenly, but measured no better) costs about half of 1 per batch: fewer
 * invocations to schedule, index arithmetic done once per run.
 */
const QUADS_PER_THREAD = 8;

export type FlipNormalizeEntry = 'flip_normalize' | 'flip_normalize4';

export interface PixelShape {
  batch: number;
  height: number;
  width: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA; alpha ignored). */
  channels: 3 | 4;
}

/** Flips (where `flips[b]` is 1) and normalises `pixels` (B x H x W x C bytes) into a feature map. */
export function flipNormalize(
  ctx: Context,
  pixels: Uint8Array,
  flips: Uint8Array,
  shape: PixelShape,
  /** Forces an entry point (tests and the bench compare them); by default the fastest that fits. */
  entry?: FlipNormalizeEntry,
): Tensor {
  const { batch, height, width, channels } = shape;
  const rows = batch * height * width;
  if (pixels.length !== rows * channels) {
    throw new Error(`flipNormalize: ${pixels.length} bytes for ${batch}x${height}x${width}x${channels}`);
  }
  if (flips.length !== batch) throw new Error(`flipNormalize: ${flips.length} flip flags for a batch of ${batch}`);
  if (entry === 'flip_normalize4' && width % 4 !== 0) throw new Error(`flipNormalize: flip_normalize4 needs a width divisible by 4, not ${width}`);
  const gpu = ctx.gpu;
  const src = gpu.upload(pixels, 'augment-pixels');
  const flags = gpu.upload(Uint32Array.from(flips), 'augment-flips');
  const y = ctx.empty([rows, 3], SiteLayout.dense(batch, height, width));
  const u = { batch, height, width, channels };
  if ((entry ?? (width % 4 === 0 ? 'flip_normalize4' : 'flip_normalize')) === 'flip_normalize4') {
    // Runs of four pixels per thread (the usual sizes): same bits, much less work on a CPU GPU.
    const qpt = QUADS_PER_THREAD;
    const p = gpu.pipeline('augment', 'flip_normalize4', { QUADS_PER_THREAD: qpt });
    const threads = batch * height * Math.ceil(width / 4 / qpt);
    gpu.dispatch(p, { pixels: src, flips: flags, y4: y.buffer }, u, gpu.grid(Math.ceil(threads / WG)));
  } else {
    const p = gpu.pipeline('augment', 'flip_normalize');
    gpu.dispatch(p, { pixels: src, flips: flags, y: y.buffer }, u, gpu.grid(Math.ceil(rows / WG)));
  }
  // Safe right away: a released buffer is only overwritten by commands recorded later.
  gpu.release(src);
  gpu.release(flags);
  return y;
}
