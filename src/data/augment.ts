/**
 * The augmentation decisions of SparK's recipe, made on the CPU per sample from a seeded
 * generator: RandomResizedCrop's box (torchvision's `get_params`, scale 0.67-1, ratio 3/4-4/3)
 * and the horizontal flip (p = 0.5). The crop and resize happen in the decoder; the flip and
 * ImageNet normalisation on the GPU (src/ops/augment.ts).
 */
import { mixSeed, Rng, Stream } from './rng.ts';

/** A crop box in source pixels: rows top..top+height, columns left..left+width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface AugmentOptions {
  /** Output side in pixels (square). */
  size: number;
  /** Fraction of the image area the crop covers. SparK: (0.67, 1). */
  scale: readonly [number, number];
  /** Aspect ratio (w/h) range, sampled log-uniformly. */
  ratio: readonly [number, number];
  /** Probability of a horizontal flip. */
  flipP: number;
}

export const SPARK_AUGMENT: AugmentOptions = { size: 224, scale: [0.67, 1], ratio: [3 / 4, 4 / 3], flipP: 0.5 };

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision.transforms.RandomResizedCrop.get_params: ten tries at a random area and
 * log-uniform aspect ratio; if none fits, a centre crop at the clamped aspect ratio.
 */
export function randomResizedCrop(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): CropBox {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** The generator for one sample's augmentation: a function of the run's seed and the sample's place. */
export function sampleRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(mixSeed(seed, Stream.augment, epoch, index));
}

/** Draws the flip after the crop, as torchvision's Compose([RandomResizedCrop, RandomHorizontalFlip]). */
export function drawFlip(rng: Rng, p: number): boolean {
  return rng.next() < p;
}
