/**
 * Draws normalized channels-last float images (the Trainer's previews) onto canvases: undo
 * ImageNet's normalization, clamp to [0, 255].
 */
import { IMAGENET_MEAN as MEAN, IMAGENET_STD as STD } from '../data/imagenet.ts';

/** RGBA bytes of image `index` of a [batch, size, size, 3] normalized array. */
export function denormalize(data: Float32Array, index: number, size: number): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(size * size * 4);
  const base = index * size * size * 3;
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = Math.round((data[base + p * 3 + c]! * STD[c]! + MEAN[c]!) * 255);
    out[p * 4 + 3] = 255;
  }
  return out;
}

export function drawImage(canvas: HTMLCanvasElement, data: Float32Array, index: number, size: number): void {
  canvas.width = size;
  canvas.height = size;
  canvas.getContext('2d')!.putImageData(new ImageData(denormalize(data, index, size), size, size), 0, 0);
}
