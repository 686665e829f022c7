/**
 * Patch masks for sparse-op tests: each image is 'none' (every patch masked), 'all' (fully
 * visible) or 'some' (a seeded random subset, at least one patch visible and one masked
 * when the grid allows), so the awkward cases are always present.
 */
import { PatchMask } from '../../src/tensor/layout.ts';
import type { Rng } from './random.ts';

export type ImageMask = 'none' | 'all' | 'some';

export function patchMask(rng: Rng, h: number, w: number, images: readonly ImageMask[]): PatchMask {
  const n = h * w;
  const visible = new Uint8Array(images.length * n);
  images.forEach((kind, b) => {
    let flags: Uint8Array;
    if (kind === 'none') flags = new Uint8Array(n);
    else if (kind === 'all') flags = new Uint8Array(n).fill(1);
    else flags = rng.choose(n, n === 1 ? 1 : 1 + rng.int(n - 1));
    visible.set(flags, b * n);
  });
  return new PatchMask(images.length, h, w, visible);
}
