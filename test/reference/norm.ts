/**
 * Float64 references for BatchNorm and LayerNorm over rows: x is [N, C] row-major (row r,
 * channel c at r*C + c), gamma and beta are [C]. Plain loops, two-pass means and variances.
 *
 * BatchNorm normalizes each channel over all N rows (PyTorch's BatchNorm1d on [N, C], which is
 * what SparK's SparseBatchNorm2d runs on the gathered active sites). LayerNorm normalizes each
 * row over its C channels.
 */

export interface BatchNormForward {
  y: Float64Array;
  /** The statistics used to normalize: the batch's (training) or the running ones (eval). */
  mean: Float64Array;
  invstd: Float64Array;
  /** Running statistics after this call (unchanged in eval). */
  runningMean: Float64Array;
  runningVar: Float64Array;
}

export interface BatchNormConfig {
  training: boolean;
  runningMean: ArrayLike<number>;
  runningVar: ArrayLike<number>;
  momentum: number;
  eps: number;
}

export function batchNormForward(
  x: ArrayLike<number>,
  n: number,
  c: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  cfg: BatchNormConfig,
): BatchNormForward {
  const mean = new Float64Array(c);
  const invstd = new Float64Array(c);
  const runningMean = Float64Array.from(cfg.runningMean);
  const runningVar = Float64Array.from(cfg.runningVar);
  for (let j = 0; j < c; j++) {
    if (cfg.training) {
      let m = 0;
      for (let r = 0; r < n; r++) m += x[r * c + j]!;
      m /= n;
      let ss = 0;
      for (let r = 0; r < n; r++) ss += (x[r * c + j]! - m) ** 2;
      const biased = ss / n;
      const unbiased = ss / (n - 1);
      mean[j] = m;
      invstd[j] = 1 / Math.sqrt(biased + cfg.eps);
      runningMean[j] = (1 - cfg.momentum) * runningMean[j]! + cfg.momentum * m;
      runningVar[j] = (1 - cfg.momentum) * runningVar[j]! + cfg.momentum * unbiased;
    } else {
      mean[j] = cfg.runningMean[j]!;
      invstd[j] = 1 / Math.sqrt(cfg.runningVar[j]! + cfg.eps);
    }
  }
  const y = new Float64Array(n * c);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < c; j++) {
      const i = r * c + j;
      y[i] = (x[i]! - mean[j]!) * invstd[j]! * gamma[j]! + beta[j]!;
    }
  }
  return { y, mean, invstd, runningMean, runningVar };
}

export interface AffineGrads {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * Backward of batchNormForward given dy. Training: the mean and variance are functions of x,
 * dx = gamma*invstd * (dy - mean_r(dy) - xhat * mean_r(dy*xhat)). Eval: they are constants,
 * dx = dy * gamma * invstd. In both, dgamma = sum_r dy*xhat, dbeta = sum_r dy.
 */
export function batchNormBackward(
  x: ArrayLike<number>,
  n: number,
  c: number,
  gamma: ArrayLike<number>,
  dy: ArrayLike<number>,
  fwd: { mean: ArrayLike<number>; invstd: ArrayLike<number> },
  training: boolean,
): AffineGrads {
  const dx = new Float64Array(n * c);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    const m = fwd.mean[j]!;
    const s = fwd.invstd[j]!;
    let sdy = 0;
    let sdyx = 0;
    for (let r = 0; r < n; r++) {
      const i = r * c + j;
      sdy += dy[i]!;
      sdyx += dy[i]! * (x[i]! - m) * s;
    }
    dgamma[j] = sdyx;
    dbeta[j] = sdy;
    for (let r = 0; r < n; r++) {
      const i = r * c + j;
      const xhat = (x[i]! - m) * s;
      dx[i] = training ? gamma[j]! * s * (dy[i]! - sdy / n - (xhat * sdyx) / n) : dy[i]! * gamma[j]! * s;
    }
  }
  return { dx, dgamma, dbeta };
}

export interface LayerNormForward {
  y: Float64Array;
  /** Per-row mean and 1 / sqrt(biased variance + eps). */
  mean: Float64Array;
  rstd: Float64Array;
}

export function layerNormForward(
  x: ArrayLike<number>,
  n: number,
  c: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
): LayerNormForward {
  const y = new Float64Array(n * c);
  const mean = new Float64Array(n);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let j = 0; j < c; j++) m += x[r * c + j]!;
    m /= c;
    let v = 0;
    for (let j = 0; j < c; j++) v += (x[r * c + j]! - m) ** 2;
    v /= c;
    const s = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = s;
    for (let j = 0; j < c; j++) y[r * c + j] = (x[r * c + j]! - m) * s * gamma[j]! + beta[j]!;
  }
  return { y, mean, rstd };
}

/** dx = rstd * (g - mean_c(g) - xhat * mean_c(g*xhat)) with g = dy*gamma; dgamma, dbeta sum over rows. */
export function layerNormBackward(
  x: ArrayLike<number>,
  n: number,
  c: number,
  gamma: ArrayLike<number>,
  dy: ArrayLike<number>,
  fwd: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
): AffineGrads {
  const dx = new Float64Array(n * c);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let r = 0; r < n; r++) {
    const m = fwd.mean[r]!;
    const s = fwd.rstd[r]!;
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < c; j++) {
      const i = r * c + j;
      const xhat = (x[i]! - m) * s;
      const g = dy[i]! * gamma[j]!;
      sg += g;
      sgx += g * xhat;
      dgamma[j] += dy[i]! * xhat;
      dbeta[j] += dy[i]!;
    }
    for (let j = 0; j < c; j++) {
      const i = r * c + j;
      const xhat = (x[i]! - m) * s;
      dx[i] = s * (dy[i]! * gamma[j]! - sg / c - (xhat * sgx) / c);
    }
  }
  return { dx, dgamma, dbeta };
}

/** Rows of a dense [B*H*W, C] map at the given grid indices (SparK's gather of active sites). */
export function gatherRows(dense: ArrayLike<number>, c: number, sites: ArrayLike<number>): Float64Array {
  const out = new Float64Array(sites.length * c);
  for (let r = 0; r < sites.length; r++) {
    for (let j = 0; j < c; j++) out[r * c + j] = dense[sites[r]! * c + j]!;
  }
  return out;
}
