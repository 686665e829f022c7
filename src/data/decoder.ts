/**
 * The platform's image decoder: Node uses sharp (libvips), the browser createImageBitmap.
 * Both decode, crop the box the pipeline picks and resize to a square in one call.
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { CropBox } from './augment.ts';

export interface DecodedImage {
  /** size x size pixels, rows top to bottom, `channels` bytes per pixel (RGB or RGBA). */
  pixels: Uint8Array;
  box: CropBox;
  /** The crop as a size x size bitmap instead of `pixels` (empty then); see `bitmapsToTensor`. */
  bitmap?: ImageBitmap;
}

/** Uploads a batch of bitmap crops, flipped and normalised, as the model's input feature map. */
export type BitmapUpload = (ctx: Context, bitmaps: readonly ImageBitmap[], flips: Uint8Array, size: number) => Tensor;

export interface ImageDecoder {
  /** Bytes per output pixel: 3 (RGB, Node) or 4 (RGBA, what canvases give; alpha is ignored). */
  readonly channels: 3 | 4;
  /**
   * Decodes `bytes`, crops `pick(width, height)` and resizes it to `size` x `size` (bicubic,
   * antialiased). Rejects when the image cannot be decoded.
   */
  decode(bytes: Uint8Array, format: string, size: number, pick: (width: number, height: number) => CropBox): Promise<DecodedImage>;
  /**
   * Present when this decoder gives bitmaps (`DecodedImage.bitmap`) rather than bytes: the
   * loader's batches then carry the bitmaps, and batchToTensor uploads them with this.
   */
  readonly bitmapsToTensor?: BitmapUpload;
  close?(): void;
}
