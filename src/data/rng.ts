/**
 * Seeded randomness for the data pipeline. Every random choice (shard order, shuffle buffer,
 * crop boxes, flips) comes from a generator whose seed is derived from the run's seed and the
 * position in the data stream, so a resumed run makes exactly the choices the uninterrupted
 * run would have made. The state is one u32, so it serialises into a resume cursor.
 */

import { Rng } from '../util/rng.ts';

export { Rng };

/** Mixes integers into one u32 seed (murmur3's finaliser per word). */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    let k = Math.imul(w >>> 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): number[] {
  return rng.permutation(n);
}

/** Streams of randomness, kept apart so that one never shifts another. */
export const Stream = { shardOrder: 1, shuffle: 2, augment: 3 } as const;
