/**
 * ImageNet normalisation (torchvision's ToTensor + Normalize), in one place for the GPU
 * augmentation, the CLI's image I/O and the page's previews.
 */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** RGB bytes (HWC) -> normalized channels-last floats. */
export function normalizeRgb(rgb: Uint8Array): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) {
    const c = i % 3;
    out[i] = (rgb[i]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
  }
  return out;
}

/** Normalized channels-last floats -> RGB bytes, clamped (the notebook's `*std + mean`, clamp 0..1). */
export function denormalizeRgb(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = i % 3;
    const v = values[i]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!;
    out[i] = Math.round(Math.min(1, Math.max(0, v)) * 255);
  }
  return out;
}
