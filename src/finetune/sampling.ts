/**
 * Which labelled images a fine-tuning run trains on, and in which order: a class-balanced,
 * seeded fraction of the labels (the "1 % / 10 % of the labels" protocol), and one seeded
 * permutation per epoch. Both depend on the seed and the data only, so a resumed run sees the
 * same images in the same order as the run it continues.
 */
import { mixSeed, Rng } from '../data/rng.ts';

/** Randomness streams of fine-tuning, apart from the data pipeline's (src/data/rng.ts). */
const LABEL_FRACTION = 11;
const EPOCH_ORDER = 12;

/**
 * Indices (increasing) of the kept images: from every class, round(fraction x its count) images,
 * at least one, chosen by a permutation seeded by (seed, class). The same fraction of each class
 * is kept, so the class balance of the data is preserved.
 */
export function labelFraction(labels: ArrayLike<number>, fraction: number, seed: number): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`--label-fraction must be in (0, 1], got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(i);
  }
  const kept: number[] = [];
  for (const [c, members] of byClass) {
    const keep = Math.max(1, Math.round(fraction * members.length));
    const order = new Rng(mixSeed(seed, LABEL_FRACTION, c)).permutation(members.length);
    for (let k = 0; k < keep; k++) kept.push(members[order[k]!]!);
  }
  return kept.sort((a, b) => a - b);
}

/** The order of the training images in `epoch`: a permutation of 0..n-1 seeded by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  return new Rng(mixSeed(seed, EPOCH_ORDER, epoch)).permutation(n);
}
