/**
 * Predictions of a fine-tuned classifier: the top-5 classes and their softmax probabilities
 * per image, in inference mode (BatchNorm on running statistics). Images arrive as
 * size x size RGB bytes, already resized and cropped (src/platform/node/images.ts in Node).
 */
import type { CropBox } from '../data/augment.ts';
import { flipNormalize } from '../ops/augment.ts';
import type { Context } from '../tensor/context.ts';
import type { Classifier } from './classifier.ts';
import { softmaxRows, topClasses } from './metrics.ts';

export interface Prediction {
  image: string;
  top5: { class: number; name: string; prob: number }[];
}

const BATCH = 32;

/** timm's evaluation crop: the shorter side goes to floor(size / 0.875), the centre size x size is kept. */
export const EVAL_CROP_PCT = 0.875;

/**
 * The box of a width x height image that the evaluation resize + centre crop keeps, in the
 * image's own pixels (for decoders that crop, then resize the box to size x size). An image
 * already at size x size is kept whole, as `webspark predict` does.
 */
export function evalCropBox(width: number, height: number, size: number, cropPct = EVAL_CROP_PCT): CropBox {
  if (width === size && height === size) return { top: 0, left: 0, width, height };
  const resized = Math.max(size, Math.floor(size / cropPct));
  const side = Math.max(1, Math.round((Math.min(width, height) * size) / resized));
  return { top: Math.floor((height - side) / 2), left: Math.floor((width - side) / 2), width: side, height: side };
}

export async function predictImages(
  ctx: Context,
  model: Classifier,
  classNames: readonly string[],
  images: readonly { name: string; rgb: Uint8Array }[],
): Promise<Prediction[]> {
  const size = model.config.inputSize;
  const K = model.config.classes;
  const per = size * size * 3;
  for (const im of images) {
    if (im.rgb.length !== per) throw new Error(`${im.name}: ${im.rgb.length} bytes, expected ${size}x${size}x3`);
  }
  model.eval();
  const out: Prediction[] = [];
  for (let start = 0; start < images.length; start += BATCH) {
    const chunk = images.slice(start, start + BATCH);
    const pixels = new Uint8Array(chunk.length * per);
    chunk.forEach((im, k) => pixels.set(im.rgb, k * per));
    const logits = await ctx.tidy(() =>
      ctx.noGrad(() => {
        const x = flipNormalize(ctx, pixels, new Uint8Array(chunk.length), { batch: chunk.length, height: size, width: size, channels: 3 });
        return model.forward(x).read();
      }),
    );
    const probs = softmaxRows(logits, K);
    chunk.forEach((im, row) => {
      const top5 = topClasses(probs, K, row, 5).map((c) => ({ class: c, name: classNames[c] ?? String(c), prob: probs[row * K + c]! }));
      out.push({ image: im.name, top5 });
    });
  }
  return out;
}
