/**
 * Node image helpers for the CLI: load a photo as the model's input (shorter side resized to
 * the input size with bicubic filtering, then centre-cropped, as the official visualisation
 * loader does; an image already at that size is used as is), and write RGB grids as PNG.
 */
import sharp from 'sharp';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** RGB bytes (HWC) of `path` at size x size. */
export async function loadSquareRgb(path: string, size: number): Promise<Uint8Array> {
  let image = sharp(path, { failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb');
  const meta = await sharp(path).metadata();
  if (meta.width !== size || meta.height !== size) {
    image = image.resize(size, size, { fit: 'cover', position: 'centre', kernel: 'cubic' });
  }
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== size || info.height !== size) {
    throw new Error(`${path}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** RGB bytes (HWC) -> ImageNet-normalized channels-last floats. */
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

/** Writes tiles (each size x size RGB) as a PNG grid of `columns` columns with a 2 px gap. */
export async function writeGridPng(path: string, tiles: Uint8Array[], size: number, columns: number): Promise<void> {
  const gap = 2;
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * size + (columns - 1) * gap;
  const height = rows * size + (rows - 1) * gap;
  const canvas = new Uint8Array(width * height * 3).fill(255);
  tiles.forEach((tile, k) => {
    const ox = (k % columns) * (size + gap);
    const oy = Math.floor(k / columns) * (size + gap);
    for (let y = 0; y < size; y++) {
      canvas.set(tile.subarray(y * size * 3, (y + 1) * size * 3), ((oy + y) * width + ox) * 3);
    }
  });
  await sharp(canvas, { raw: { width, height, channels: 3 } }).png().toFile(path);
}
