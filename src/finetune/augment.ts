/**
 * Fine-tuning's training augmentation on images held in memory (size x size RGB bytes, as the
 * labelled loaders keep them): RandomResizedCrop (torchvision's box sampling, src/data/augment.ts,
 * with the classification recipe's scale 0.08-1) resized back to the input size by bilinear
 * interpolation, and a horizontal flip with p = 0.5. The flip and ImageNet normalisation then
 * happen on the GPU (flipNormalize). Each image's draws come from a generator seeded by
 * (seed, epoch, its place in the epoch), so a resumed run repeats them.
 */
import { drawFlip, randomResizedCrop, sampleRng, type AugmentOptions, type CropBox } from '../data/augment.ts';

/** timm / torchvision's classification training recipe. */
export const FINETUNE_AUGMENT: Omit<AugmentOptions, 'size'> = { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], flipP: 0.5 };

/**
 * Bilinear resize of the `box` of a square RGB image (side `src`) to out x out pixels, with
 * half-pixel centres and edge clamping (torchvision's bilinear resize without antialiasing).
 * Writes into `dst` at `offset`.
 */
export function cropResize(image: Uint8Array, src: number, box: CropBox, out: number, dst: Uint8Array, offset = 0): void {
  const sy = box.height / out;
  const sx = box.width / out;
  for (let y = 0; y < out; y++) {
    const fy = Math.min(Math.max(box.top + (y + 0.5) * sy - 0.5, 0), src - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, src - 1);
    const wy = fy - y0;
    for (let x = 0; x < out; x++) {
      const fx = Math.min(Math.max(box.left + (x + 0.5) * sx - 0.5, 0), src - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, src - 1);
      const wx = fx - x0;
      const o = offset + (y * out + x) * 3;
      for (let c = 0; c < 3; c++) {
        const a = image[(y0 * src + x0) * 3 + c]! * (1 - wx) + image[(y0 * src + x1) * 3 + c]! * wx;
        const b = image[(y1 * src + x0) * 3 + c]! * (1 - wx) + image[(y1 * src + x1) * 3 + c]! * wx;
        dst[o + c] = Math.round(a * (1 - wy) + b * wy);
      }
    }
  }
}

export interface AugmentedBatch {
  pixels: Uint8Array;
  flips: Uint8Array;
}

/**
 * Crops of `picks` (image indices into `images`, n x size x size x 3) for one batch; `first`
 * is the batch's place in the epoch (seeds the draws).
 */
export function augmentBatch(
  images: Uint8Array,
  size: number,
  picks: readonly number[],
  seed: number,
  epoch: number,
  first: number,
  options: Omit<AugmentOptions, 'size'> = FINETUNE_AUGMENT,
): AugmentedBatch {
  const per = size * size * 3;
  const pixels = new Uint8Array(picks.length * per);
  const flips = new Uint8Array(picks.length);
  picks.forEach((img, k) => {
    const rng = sampleRng(seed, epoch, first + k);
    const box = randomResizedCrop(size, size, options.scale, options.ratio, rng);
    flips[k] = drawFlip(rng, options.flipP) ? 1 : 0;
    cropResize(images.subarray(img * per, (img + 1) * per), size, box, size, pixels, k * per);
  });
  return { pixels, flips };
}
