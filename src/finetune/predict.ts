/**
 * Predictions of a fine-tuned classifier: the top-5 classes and their softmax probabilities
 * per image, in inference mode (BatchNorm on running statistics). Images arrive as
 * size x size RGB bytes, already resized and cropped (src/platform/node/images.ts in Node).
 */
import { flipNormalize } from '../ops/augment.ts';
import type { Context } from '../tensor/context.ts';
import type { Classifier } from './classifier.ts';
import { softmaxRows, topClasses } from './metrics.ts';

export interface Prediction {
  image: string;
  top5: { class: number; name: string; prob: number }[];
}

const BATCH = 32;

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
