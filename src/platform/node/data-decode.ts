/**
 * The Node image decoder: sharp (libvips) decodes, crops, resizes (bicubic, antialiased like
 * PIL's) and converts to 8-bit sRGB in one pipeline, on libuv's thread pool, so several
 * decodes run at once while the main thread parses shards. The loader bounds how many are in
 * flight. EXIF orientation is not applied (as torchvision with PIL does not).
 */
import sharp from 'sharp';
import type { CropBox } from '../../data/augment.ts';
import type { DecodedImage, ImageDecoder } from '../../data/decoder.ts';
import { imageSize } from '../../data/image-size.ts';

export class SharpDecoder implements ImageDecoder {
  readonly channels = 3 as const;

  constructor(opts: { threads?: number } = {}) {
    // libvips threads per image; the parallelism comes from many images in flight instead.
    sharp.concurrency(opts.threads ?? 1);
    sharp.cache(false);
  }

  async decode(bytes: Uint8Array, _format: string, size: number, pick: (w: number, h: number) => CropBox): Promise<DecodedImage> {
    if (bytes.length === 0) throw new Error('empty image file');
    let dims = imageSize(bytes);
    if (!dims) {
      const meta = await sharp(bytes).metadata();
      if (!meta.width || !meta.height) throw new Error('image without dimensions');
      dims = { width: meta.width, height: meta.height };
    }
    const box = pick(dims.width, dims.height);
    const { data, info } = await sharp(bytes, { failOn: 'error' })
      .extract({ left: box.left, top: box.top, width: box.width, height: box.height })
      .resize(size, size, { kernel: 'cubic', fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 3) {
      throw new Error(`decoder gave ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
    }
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), box };
  }
}
