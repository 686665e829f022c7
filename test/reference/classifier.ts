/**
 * Float64 references for the classifier's head ops: global average pooling of a dense
 * channels-last map x [B*S, C], and label-smoothed softmax cross-entropy over logits [B, K]
 * (PyTorch's CrossEntropyLoss(label_smoothing=eps): target (1 - eps) onehot + eps / K).
 */

export function avgPoolForward(x: ArrayLike<number>, B: number, S: number, C: number): Float64Array {
  const y = new Float64Array(B * C);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) y[b * C + c]! += x[(b * S + s) * C + c]! / S;
  return y;
}

export function avgPoolBackward(gy: ArrayLike<number>, B: number, S: number, C: number): Float64Array {
  const gx = new Float64Array(B * S * C);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) gx[(b * S + s) * C + c] = gy[b * C + c]! / S;
  return gx;
}

/** Mean smoothed cross-entropy. Log-sum-exp with the row maximum subtracted. */
export function crossEntropyForward(z: ArrayLike<number>, labels: ArrayLike<number>, K: number, eps: number): number {
  const B = labels.length;
  let total = 0;
  for (let i = 0; i < B; i++) {
    let m = -Infinity;
    for (let c = 0; c < K; c++) m = Math.max(m, z[i * K + c]!);
    let sum = 0;
    for (let c = 0; c < K; c++) sum += Math.exp(z[i * K + c]! - m);
    const lse = m + Math.log(sum);
    for (let c = 0; c < K; c++) {
      const q = (c === labels[i] ? 1 - eps : 0) + eps / K;
      total += q * (lse - z[i * K + c]!);
    }
  }
  return total / B;
}

/** dL/dz = (softmax(z) - q) / B, times the upstream gradient `gy`. */
export function crossEntropyBackward(z: ArrayLike<number>, labels: ArrayLike<number>, K: number, eps: number, gy = 1): Float64Array {
  const B = labels.length;
  const g = new Float64Array(B * K);
  for (let i = 0; i < B; i++) {
    let m = -Infinity;
    for (let c = 0; c < K; c++) m = Math.max(m, z[i * K + c]!);
    let sum = 0;
    for (let c = 0; c < K; c++) sum += Math.exp(z[i * K + c]! - m);
    for (let c = 0; c < K; c++) {
      const q = (c === labels[i] ? 1 - eps : 0) + eps / K;
      g[i * K + c] = ((Math.exp(z[i * K + c]! - m) / sum - q) / B) * gy;
    }
  }
  return g;
}
