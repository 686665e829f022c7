/**
 * Weighted k-NN classification on frozen features (InstDisc / DINO's protocol): features
 * L2-normalised, cosine similarity of each query to every training feature, the k most similar
 * vote for their class with weight exp(sim / T) (k = 20, T = 0.07 by default).
 *
 * The similarity matrix is a GEMM on the GPU: the engine's tiled `linear` op (src/ops/matmul.ts)
 * with the training features as the weight, queries in chunks so one chunk's [chunk, N] block
 * stays small. Top-k and voting run on the CPU over each block read back.
 */
import { linear } from '../ops/matmul.ts';
import type { Context } from '../tensor/context.ts';
import type { FeatureSet } from './features.ts';

export interface KnnOptions {
  k?: number;
  temperature?: number;
  /** Queries per GEMM (default 256). */
  chunk?: number;
}

export interface ClassifyResult {
  accuracy: number;
  correct: number;
  total: number;
  predictions: Int32Array;
}

/** Rows scaled to unit L2 norm (a zero row stays zero). */
export function l2Normalize(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += x[r * dim + c]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let c = 0; c < dim; c++) out[r * dim + c] = x[r * dim + c]! * inv;
  }
  return out;
}

export function classCount(...sets: FeatureSet[]): number {
  let max = -1;
  for (const s of sets) for (const l of s.labels) {
    if (l < 0) throw new Error('evaluation needs a label for every image (a .cls entry, a class folder or a label column); found an unlabelled image');
    max = Math.max(max, l);
  }
  return max + 1;
}

/** The k indices of the largest values of row (descending), by partial selection. */
function topK(row: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (idx.length < k) {
      idx.push(i);
      if (idx.length === k) idx.sort((a, b) => row[b]! - row[a]!);
    } else if (row[i]! > row[idx[k - 1]!]!) {
      let j = k - 1;
      while (j > 0 && row[idx[j - 1]!]! < row[i]!) {
        idx[j] = idx[j - 1]!;
        j--;
      }
      idx[j] = i;
    }
  }
  if (idx.length < k) idx.sort((a, b) => row[b]! - row[a]!);
  return idx;
}

export async function knnClassify(ctx: Context, train: FeatureSet, test: FeatureSet, options: KnnOptions = {}): Promise<ClassifyResult> {
  if (train.dim !== test.dim) throw new Error(`k-NN: train features have ${train.dim} channels, test ${test.dim}`);
  if (train.n === 0 || test.n === 0) throw new Error('k-NN: the train and test sets must both hold images');
  const k = Math.min(options.k ?? 20, train.n);
  const T = options.temperature ?? 0.07;
  const chunk = Math.max(1, options.chunk ?? 256);
  const classes = classCount(train, test);
  const dim = train.dim;
  const bankData = l2Normalize(train.features, dim);
  const queries = l2Normalize(test.features, dim);
  const predictions = new Int32Array(test.n);
  let correct = 0;
  for (let start = 0; start < test.n; start += chunk) {
    const q = Math.min(chunk, test.n - start);
    // The bank is uploaded per chunk inside the scope so that nothing outlives the call.
    const sims = await ctx.tidy(() =>
      ctx.noGrad(() => {
        const bank = ctx.fromArray(bankData, [train.n, dim]);
        const x = ctx.fromArray(queries.subarray(start * dim, (start + q) * dim), [q, dim]);
        return linear(x, bank, null).read();
      }),
    );
    const votes = new Float64Array(classes);
    for (let i = 0; i < q; i++) {
      const row = sims.subarray(i * train.n, (i + 1) * train.n);
      votes.fill(0);
      for (const j of topK(row, k)) votes[train.labels[j]!]! += Math.exp(row[j]! / T);
      let best = 0;
      for (let c = 1; c < classes; c++) if (votes[c]! > votes[best]!) best = c;
      predictions[start + i] = best;
      if (best === test.labels[start + i]) correct++;
    }
  }
  return { accuracy: correct / test.n, correct, total: test.n, predictions };
}
