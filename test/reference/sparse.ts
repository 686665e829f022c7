/**
 * Float64 references for the structural ops: moving rows between a sparse layout and its dense
 * grid (scatter, gather, SparK's mask fill), layer scale and drop path. Feature maps are
 * channels-last rows [rows, C]; a dense grid has row (b*H + y)*W + x.
 */
import type { SiteLayout } from '../../src/tensor/layout.ts';

/** Sparse rows -> dense grid rows, `fill[c]` (or 0) at inactive sites. */
export function scatter(x: ArrayLike<number>, layout: SiteLayout, C: number, fill: ArrayLike<number> | null = null): Float64Array {
  const y = new Float64Array(layout.gridSize * C);
  if (fill) for (let s = 0; s < layout.gridSize; s++) for (let c = 0; c < C; c++) y[s * C + c] = fill[c]!;
  for (let r = 0; r < layout.rows; r++) {
    const s = layout.site(r);
    for (let c = 0; c < C; c++) y[s * C + c] = x[r * C + c]!;
  }
  return y;
}

/** Dense grid rows -> the rows of `layout`'s active sites. */
export function gather(x: ArrayLike<number>, layout: SiteLayout, C: number): Float64Array {
  const y = new Float64Array(layout.rows * C);
  for (let r = 0; r < layout.rows; r++) {
    const s = layout.site(r);
    for (let c = 0; c < C; c++) y[r * C + c] = x[s * C + c]!;
  }
  return y;
}

/** Mask fill: active sites copy their row, inactive sites get token. */
export function maskFill(x: ArrayLike<number>, token: ArrayLike<number>, layout: SiteLayout, C: number): Float64Array {
  return scatter(x, layout, C, token);
}

/** Gradients of L = sum(gy * maskFill(x, token)): dx = gy at active sites, dtoken = sum of gy at inactive ones. */
export function maskFillBackward(gy: ArrayLike<number>, layout: SiteLayout, C: number): { dx: Float64Array; dtoken: Float64Array } {
  const dtoken = new Float64Array(C);
  const rowOf = layout.rowOf;
  for (let s = 0; s < layout.gridSize; s++) {
    if (rowOf[s]! >= 0) continue;
    for (let c = 0; c < C; c++) dtoken[c]! += gy[s * C + c]!;
  }
  return { dx: gather(gy, layout, C), dtoken };
}

/** y[r, c] = x[r, c] * gamma[c]. */
export function channelScale(x: ArrayLike<number>, gamma: ArrayLike<number>): Float64Array {
  const C = gamma.length;
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * gamma[i % C]!;
  return y;
}

export function channelScaleBackward(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  gy: ArrayLike<number>,
): { dx: Float64Array; dgamma: Float64Array } {
  const C = gamma.length;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(C);
  for (let i = 0; i < x.length; i++) {
    dx[i] = gy[i]! * gamma[i % C]!;
    dgamma[i % C]! += gy[i]! * x[i]!;
  }
  return { dx, dgamma };
}

/** Per-image multiplier of drop path: keep / (1 - prob), or keep when prob is 1 (timm). */
export function dropPathFactors(keep: ArrayLike<number>, prob: number): Float64Array {
  const keepProb = Math.fround(1 - prob);
  return Float64Array.from(keep, (k) => (k ? (keepProb > 0 ? Math.fround(1 / keepProb) : 1) : 0));
}

/** y = x * factor[image of row]; the gradient is the same map applied to gy. */
export function dropPath(x: ArrayLike<number>, layout: SiteLayout, C: number, factor: ArrayLike<number>): Float64Array {
  const plane = layout.height * layout.width;
  const y = new Float64Array(x.length);
  for (let r = 0; r < layout.rows; r++) {
    const f = factor[Math.floor(layout.site(r) / plane)]!;
    for (let c = 0; c < C; c++) y[r * C + c] = x[r * C + c]! * f;
  }
  return y;
}
