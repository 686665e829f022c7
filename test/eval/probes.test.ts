/**
 * k-NN and the linear probe on synthetic features with planted structure: K classes whose
 * features are a class centre plus bounded noise, so the classes are linearly separable with
 * a margin (known accuracy: 100 %). With shuffled labels the features carry no information
 * about the label, so the accuracy is a Binomial(n, 1/K) / n draw around chance.
 */
import { describe, expect, it } from 'vitest';
import type { FeatureSet } from '../../src/eval/features.ts';
import { globalAverage } from '../../src/eval/features.ts';
import { knnClassify, l2Normalize } from '../../src/eval/knn.ts';
import { linearProbe, softmaxCrossEntropy } from '../../src/eval/linear-probe.ts';
import { isValKey } from '../../src/eval/split.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';

const K = 5;
const DIM = 16;

/** Class centres: K orthogonal directions (axes) scaled to 4; noise uniform in [-0.5, 0.5] per dim. */
function planted(n: number, seed: number, shuffle = false): FeatureSet {
  const rng = new Rng(seed);
  const features = new Float32Array(n * DIM);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % K;
    labels[i] = y;
    for (let c = 0; c < DIM; c++) features[i * DIM + c] = (c === y ? 4 : 0) + rng.uniform(-0.5, 0.5) + 1;
  }
  if (shuffle) {
    const p = rng.permutation(n);
    const copy = labels.slice();
    p.forEach((j, i) => (labels[i] = copy[j]!));
  }
  return { features, labels, n, dim: DIM };
}

/** 4.5 standard deviations of Binomial(n, 1/K)/n around 1/K: a false failure has probability < 1e-5. */
function chanceBound(n: number): [number, number] {
  const p = 1 / K;
  const sd = Math.sqrt((p * (1 - p)) / n);
  return [p - 4.5 * sd, p + 4.5 * sd];
}

/** Float64 CPU k-NN (the protocol written out directly) for checking the GPU-GEMM version. */
function knnReference(train: FeatureSet, test: FeatureSet, k: number, T: number): Int32Array {
  const a = l2Normalize(train.features, DIM);
  const b = l2Normalize(test.features, DIM);
  const out = new Int32Array(test.n);
  for (let i = 0; i < test.n; i++) {
    const sims = Array.from({ length: train.n }, (_, j) => {
      let s = 0;
      for (let c = 0; c < DIM; c++) s += a[j * DIM + c]! * b[i * DIM + c]!;
      return [s, j] as const;
    }).sort((x, y) => y[0] - x[0]);
    const votes = new Float64Array(K);
    for (const [s, j] of sims.slice(0, k)) votes[train.labels[j]!]! += Math.exp(s / T);
    out[i] = votes.indexOf(Math.max(...votes));
  }
  return out;
}

describe('k-NN (cosine, k = 20, T = 0.07)', () => {
  const ctx = useContext();

  it('is exact on separable planted classes', async () => {
    const r = await knnClassify(ctx(), planted(400, 1), planted(200, 2));
    expect(r.accuracy).toBe(1);
  });

  it('matches a float64 CPU reference on unstructured data (GPU GEMM similarities, chunked)', async () => {
    const train = planted(300, 3, true);
    const test = planted(70, 4, true);
    const r = await knnClassify(ctx(), train, test, { chunk: 32 });
    const ref = knnReference(train, test, 20, 0.07);
    // f32 vs f64 similarities can swap near-ties at the k-th neighbour; allow at most 2 of 70.
    const differ = ref.reduce((a, v, i) => a + (v !== r.predictions[i] ? 1 : 0), 0);
    expect(differ).toBeLessThanOrEqual(2);
  });

  it('is at chance on shuffled labels', async () => {
    const r = await knnClassify(ctx(), planted(600, 5, true), planted(1000, 6, true));
    const [lo, hi] = chanceBound(1000);
    expect(r.accuracy).toBeGreaterThan(lo);
    expect(r.accuracy).toBeLessThan(hi);
  });
});

describe('linear probe (BatchNorm without affine + Linear, AdamW on the GPU)', () => {
  const ctx = useContext();

  it('softmax cross-entropy gradient matches finite differences', () => {
    const rng = new Rng(7);
    const logits = Float32Array.from({ length: 3 * K }, () => rng.uniform(-2, 2));
    const labels = [0, 3, 4];
    const { grad } = softmaxCrossEntropy(logits, labels, K);
    for (let i = 0; i < logits.length; i++) {
      const h = 1e-2;
      const up = logits.slice();
      up[i]! += h;
      const dn = logits.slice();
      dn[i]! -= h;
      const fd = (softmaxCrossEntropy(up, labels, K).loss - softmaxCrossEntropy(dn, labels, K).loss) / (2 * h);
      // Central difference in f32 logits: O(h^2) truncation + f32 rounding of the loss, ~1e-4.
      expect(Math.abs(fd - grad[i]!)).toBeLessThan(2e-4);
    }
  });

  it('reaches 100 % on separable planted classes, and the loss falls', async () => {
    const r = await linearProbe(ctx(), planted(400, 11), planted(200, 12), { epochs: 10, batchSize: 50, lr: 0.05, seed: 1 });
    expect(r.accuracy).toBe(1);
    expect(r.trainAccuracy).toBe(1);
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]! / 2);
  });

  it('is at chance on shuffled labels', async () => {
    const r = await linearProbe(ctx(), planted(400, 13, true), planted(1000, 14, true), { epochs: 5, batchSize: 50, lr: 0.05, seed: 2 });
    const [lo, hi] = chanceBound(1000);
    expect(r.accuracy).toBeGreaterThan(lo);
    expect(r.accuracy).toBeLessThan(hi);
  });
});

describe('helpers', () => {
  it('globalAverage averages each image over its sites', () => {
    // 2 images, 2 sites, 3 channels.
    const rows = Float32Array.from([1, 2, 3, 3, 4, 5, 10, 0, 0, 20, 0, 2]);
    expect(Array.from(globalAverage(rows, 2, 3))).toEqual([2, 3, 4, 15, 0, 1]);
  });

  it('the split depends on key and seed only, near the asked fraction', () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `train/${String(i).padStart(6, '0')}`);
    const val = keys.filter((k) => isValKey(k, 0, 0.2));
    // Binomial(4000, 0.2): sd 25 images; 5 sd either side.
    expect(Math.abs(val.length - 800)).toBeLessThan(125);
    expect(keys.filter((k) => isValKey(k, 0, 0.2))).toEqual(val);
    expect(keys.filter((k) => isValKey(k, 1, 0.2))).not.toEqual(val);
  });
});
