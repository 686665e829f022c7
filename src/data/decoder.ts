/**
 * The platform's image decoder: Node uses sharp (libvips), the browser createImageBitmap.
 * Both decode, crop the box the pipeline picks and resize to a square in one call.
 */
import type { CropBox } from './augment.ts';

export interface DecodedImage {
  /** size x size pixels, rows top to bottom, `channels` bytes per pixel (RGB or RGBA). */
  pixels: Uint8Array;
  box: CropBox;
}

export interface ImageDecoder {
  /** Bytes per output pixel: 3 (RGB, Node) or 4 (RGBA, what canvases give; alpha is ignored). */
  readonly channels: 3 | 4;
  /**
   * Decodes `bytes`, crops `pick(width, height)` and resizes it to `size` x `size` (bicubic,
   * antialiased). Rejects when the image cannot be decoded.
   */
  decode(bytes: Uint8Array, format: string, size: number, pick: (width: number, height: number) => CropBox): Promise<DecodedImage>;
  close?(): void;
}
