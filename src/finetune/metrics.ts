/** Classification read-outs on the CPU from logits [B, K] read back from the GPU. */

/** Softmax of each row, in float64 with the row maximum subtracted. */
export function softmaxRows(logits: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length / classes; i++) {
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[i * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[i * classes + c] = Math.exp(logits[i * classes + c]! - m);
    for (let c = 0; c < classes; c++) out[i * classes + c]! /= sum;
  }
  return out;
}

/** The k highest classes of row `row`, best first (ties: the lower index first). */
export function topClasses(values: ArrayLike<number>, classes: number, row: number, k: number): number[] {
  const idx = Array.from({ length: classes }, (_, c) => c);
  idx.sort((a, b) => values[row * classes + b]! - values[row * classes + a]! || a - b);
  return idx.slice(0, Math.min(k, classes));
}

export interface Accuracy {
  /** Rows whose label is the top class / among the top 5 (top 5 = all classes when K <= 5). */
  top1: number;
  top5: number;
  /** Sum over rows of the (unsmoothed) cross-entropy. */
  lossSum: number;
  total: number;
}

export function accuracyOf(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): Accuracy {
  const p = softmaxRows(logits, classes);
  let top1 = 0;
  let top5 = 0;
  let lossSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const best = topClasses(logits, classes, i, 5);
    if (best[0] === labels[i]) top1++;
    if (best.includes(labels[i]!)) top5++;
    lossSum -= Math.log(Math.max(p[i * classes + labels[i]!]!, 1e-300));
  }
  return { top1, top5, lossSum, total: labels.length };
}
