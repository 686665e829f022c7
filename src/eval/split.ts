/**
 * Reproducible train/val split by sample key: a sample goes to val when a seeded hash of its
 * key falls under the fraction. The decision depends on the key and the seed only, not on the
 * order shards are read in or on which other samples exist.
 */

/** FNV-1a of `seed:key`, as a number in [0, 1). */
export function keyUnit(key: string, seed: number): number {
  let h = 0x811c9dc5;
  const s = `${seed}:${key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche so that nearby keys spread over [0, 1).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}

export function isValKey(key: string, seed: number, valFraction: number): boolean {
  return keyUnit(key, seed) < valFraction;
}
