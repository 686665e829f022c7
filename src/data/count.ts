/** Counts the samples of a dataset by reading it once (no decoding): for epoch lengths. */
import { newMetrics, type Shard } from './types.ts';

export async function countSamples(shards: readonly Shard[]): Promise<number> {
  const metrics = newMetrics();
  let n = 0;
  for (const shard of shards) {
    try {
      for await (const _ of shard.samples(0, metrics)) n++;
    } catch {
      // A broken shard counts what it delivered; training will report it by name.
    }
  }
  return n;
}
