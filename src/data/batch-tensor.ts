/** The data layer's last step: a loader batch into the model's input tensor on the GPU. */
import { flipNormalize } from '../ops/augment.ts';
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Batch } from './loader.ts';

/**
 * A loader batch as the model's input feature map: bytes go through flipNormalize; bitmap
 * crops (BitmapDecoder with output 'bitmap') through its texture upload, which gives the same
 * tensor bit for bit (on SwiftShader the byte path is the faster one; docs/benchmarks.md).
 */
export function batchToTensor(ctx: Context, batch: Batch): Tensor {
  if (batch.bitmaps) return batch.bitmaps.upload(ctx, batch.bitmaps.images, batch.flips, batch.size);
  return flipNormalize(ctx, batch.pixels, batch.flips, {
    batch: batch.batch,
    height: batch.size,
    width: batch.size,
    channels: batch.channels,
  });
}
