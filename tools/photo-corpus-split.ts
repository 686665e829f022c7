// The held-out rule of the photo corpus, in its own file so a test can pin it: a photo is
// held out when a seeded 32-bit FNV-1a hash of its key falls in the lowest HELD_OUT_SHARE of
// the hash range. The rule looks at nothing but the key, so adding or removing other photos
// never moves a photo between the splits, and a held-out photo is never trained on.

export const SPLIT_SEED = 'webspark-photo-corpus-1';
export const HELD_OUT_SHARE = 0.15;
/** The script stops when fewer photos than this share land in the held-out split. */
export const MIN_HELD_OUT_SHARE = 0.1;

/** 32-bit FNV-1a of a string's UTF-8 bytes, in [0, 2^32). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The seeded hash of a key as a fraction in [0, 1). */
export function keyFraction(key: string, seed = SPLIT_SEED): number {
  return fnv1a32(`${seed}:${key}`) / 2 ** 32;
}

export function isHeldOut(key: string): boolean {
  return keyFraction(key) < HELD_OUT_SHARE;
}
