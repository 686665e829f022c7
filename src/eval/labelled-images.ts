/**
 * Labelled images for evaluation from any shards and any decoder (the app's worker: URL or
 * picked-file shards and createImageBitmap; Node: sharp). One pass over the shards fills both
 * sides of the seeded key split (src/eval/split.ts), each up to its limit; the whole image is
 * resized to size x size (no crop, no flip: evaluation is deterministic) and kept as RGB bytes,
 * the layout `extractFeatures` wants (an RGBA decoder's alpha is dropped here).
 */
import type { ImageDecoder } from '../data/decoder.ts';
import { newMetrics, type Shard } from '../data/types.ts';
import type { ImageSet } from './evaluate.ts';
import { isValKey } from './split.ts';

export interface LabelledSet extends ImageSet {
  keys: string[];
}

export interface SplitLoadOptions {
  size: number;
  /** Most images kept on each side (the pass stops once both are full). */
  trainLimit?: number;
  valLimit?: number;
  /** The split: a sample is val when the seeded hash of its key is under valFraction. */
  valFraction: number;
  seed: number;
  /** No split: every image goes to this side (the data is one side of a split it gives itself). */
  only?: 'train' | 'val';
  /** Names the data in errors. */
  name: string;
  /** Labelled images decoded so far. */
  onProgress?: (loaded: number) => void;
  /** Decodes in flight (default 8). */
  parallel?: number;
}

/** The message for data without labels (the same advice as `webspark eval`). */
export function unlabelledError(name: string, unlabelled: number): Error {
  const hint = unlabelled > 0 ? ` (${unlabelled} images without a label: give .cls entries, class folders or a label column)` : '';
  return new Error(`${name}: no labelled images found${hint}`);
}

/** RGB bytes from a decoder's pixels (3 or 4 bytes per pixel). */
export function toRgb(pixels: Uint8Array, channels: 3 | 4): Uint8Array {
  if (channels === 3) return pixels;
  const n = pixels.length / 4;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    out[p * 3] = pixels[p * 4]!;
    out[p * 3 + 1] = pixels[p * 4 + 1]!;
    out[p * 3 + 2] = pixels[p * 4 + 2]!;
  }
  return out;
}

interface Side {
  chunks: Uint8Array[];
  labels: number[];
  keys: string[];
  limit: number;
}

function pack(side: Side, size: number): LabelledSet {
  const per = size * size * 3;
  const images = new Uint8Array(side.labels.length * per);
  side.chunks.forEach((c, i) => images.set(c, i * per));
  return { images, labels: Int32Array.from(side.labels), keys: side.keys };
}

/**
 * Reads the shards in order and returns both sides of the split (with `only`, one side holds
 * everything). Throws (naming the data) when no image carries a label, or when one side of the
 * split is empty (too few images, or a val fraction that leaves nothing on a side).
 */
export async function loadLabelledSplit(shards: Shard[], decoder: ImageDecoder, options: SplitLoadOptions): Promise<{ train: LabelledSet; val: LabelledSet }> {
  const { size, name } = options;
  const train: Side = { chunks: [], labels: [], keys: [], limit: options.trainLimit ?? Infinity };
  const val: Side = { chunks: [], labels: [], keys: [], limit: options.valLimit ?? Infinity };
  const metrics = newMetrics();
  const parallel = Math.max(1, options.parallel ?? 8);
  let unlabelled = 0;
  let loaded = 0;
  const full = () => (options.only === 'val' || train.labels.length >= train.limit) && (options.only === 'train' || val.labels.length >= val.limit);
  let pending: Promise<void>[] = [];
  const drain = async () => {
    await Promise.all(pending);
    pending = [];
    options.onProgress?.(loaded);
  };
  for (const shard of shards) {
    for await (const sample of shard.samples(0, metrics)) {
      if (sample.label < 0) {
        unlabelled++;
        continue;
      }
      const side = options.only ? (options.only === 'val' ? val : train) : isValKey(sample.key, options.seed, options.valFraction) ? val : train;
      if (side.labels.length >= side.limit) {
        if (full()) break;
        continue;
      }
      const slot = side.labels.length;
      side.labels.push(sample.label);
      side.keys.push(sample.key);
      side.chunks.push(new Uint8Array(0));
      pending.push(
        decoder
          .decode(sample.image, sample.format, size, (width, height) => ({ top: 0, left: 0, width, height }))
          .then((d) => {
            side.chunks[slot] = toRgb(d.pixels, decoder.channels);
            loaded++;
          })
          .catch((e: Error) => {
            throw new Error(`${sample.shard}: ${sample.key}: cannot decode (${e.message})`);
          }),
      );
      if (pending.length >= parallel) await drain();
    }
    await drain();
    if (full()) break;
  }
  await drain();
  if (train.labels.length + val.labels.length === 0) throw unlabelledError(name, unlabelled);
  for (const [side, what] of [[train, 'training'], [val, 'validation']] as const) {
    if (side.labels.length === 0 && !options.only) {
      throw new Error(`${name}: the split left no ${what} images (${train.labels.length + val.labels.length} labelled images in all): use more images or another validation fraction`);
    }
  }
  return { train: pack(train, size), val: pack(val, size) };
}
