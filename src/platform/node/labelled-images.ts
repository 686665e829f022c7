/**
 * Labelled images for evaluation in Node: every sample of the given shards (WebDataset `.cls`,
 * ImageFolder class folders, a parquet label column: `Sample.label` carries all three), the
 * whole image resized to size x size (no crop, no flip: evaluation is deterministic), held in
 * memory as RGB bytes.
 */
import { newMetrics } from '../../data/types.ts';
import { isValKey } from '../../eval/split.ts';
import { unlabelledError } from '../../eval/labelled-images.ts';
import { SharpDecoder } from './data-decode.ts';
import { nodeShards } from './data-sources.ts';

export interface LabelledImages {
  images: Uint8Array;
  labels: Int32Array;
  keys: string[];
  size: number;
  /** Class names (ImageFolder's folders); empty when the data gives indices only. */
  classes: string[];
}

export interface LoadOptions {
  size: number;
  /** Stop after this many labelled images. */
  limit?: number;
  /** Keep only samples on this side of the split (with `valFraction`, `seed`). */
  split?: { side: 'train' | 'val'; valFraction: number; seed: number };
  onProgress?: (loaded: number) => void;
}

export async function loadLabelledImages(specs: string | string[], options: LoadOptions): Promise<LabelledImages> {
  const { shards, classes } = await nodeShards(specs);
  const decoder = new SharpDecoder();
  const metrics = newMetrics();
  const size = options.size;
  const limit = options.limit ?? Infinity;
  const chunks: Uint8Array[] = [];
  const labels: number[] = [];
  const keys: string[] = [];
  let unlabelled = 0;
  for (const shard of shards) {
    const pending: Promise<void>[] = [];
    for await (const sample of shard.samples(0, metrics)) {
      if (options.split && isValKey(sample.key, options.split.seed, options.split.valFraction) !== (options.split.side === 'val')) continue;
      if (sample.label < 0) {
        unlabelled++;
        continue;
      }
      if (labels.length >= limit) break;
      const slot = labels.length;
      labels.push(sample.label);
      keys.push(sample.key);
      chunks.push(new Uint8Array(0));
      pending.push(
        decoder
          .decode(sample.image, sample.format, size, (width, height) => ({ top: 0, left: 0, width, height }))
          .then((d) => void (chunks[slot] = d.pixels))
          .catch((e: Error) => {
            throw new Error(`${sample.shard}: ${sample.key}: cannot decode (${e.message})`);
          }),
      );
      if (pending.length >= 16) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    options.onProgress?.(labels.length);
    if (labels.length >= limit) break;
  }
  // The same message as the app's Evaluate panel (src/eval/labelled-images.ts).
  if (labels.length === 0) throw unlabelledError([specs].flat().join(' '), classes.length === 0 ? unlabelled : 0);
  const per = size * size * 3;
  const images = new Uint8Array(labels.length * per);
  chunks.forEach((c, i) => images.set(c, i * per));
  return { images, labels: Int32Array.from(labels), keys, size, classes };
}
