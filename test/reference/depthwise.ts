/**
 * Float64 reference for the depthwise conv on a DENSE channels-last grid: x [B*H*W, C] with
 * row (b*H + y)*W + x, w [C, 1, K, K] (OIHW, groups = C), bias [C] or null. Sparse results
 * are defined from this one: zero-fill the inactive sites, convolve, keep the active rows
 * (the official SparK simulation); see test/reference/sparse.ts for scatter and gather.
 */

export interface DwGeometry {
  B: number;
  H: number;
  W: number;
  C: number;
  K: number;
  stride: number;
  pad: number;
}

export function outSize(g: DwGeometry): { Ho: number; Wo: number } {
  return {
    Ho: Math.floor((g.H + 2 * g.pad - g.K) / g.stride) + 1,
    Wo: Math.floor((g.W + 2 * g.pad - g.K) / g.stride) + 1,
  };
}

/** y[(b*Ho + oy)*Wo + ox, c] = bias[c] + sum_{ky,kx} w[c,ky,kx] * x(b, oy*s - p + ky, ox*s - p + kx, c). */
export function depthwiseForward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  g: DwGeometry,
): Float64Array {
  const { B, H, W, C, K, stride, pad } = g;
  const { Ho, Wo } = outSize(g);
  const y = new Float64Array(B * Ho * Wo * C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const o = (b * Ho + oy) * Wo + ox;
        for (let c = 0; c < C; c++) {
          let acc = bias ? bias[c]! : 0;
          for (let ky = 0; ky < K; ky++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < K; kx++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              acc += w[(c * K + ky) * K + kx]! * x[((b * H + iy) * W + ix) * C + c]!;
            }
          }
          y[o * C + c] = acc;
        }
      }
    }
  }
  return y;
}

/** Gradients of L = sum(gy * y): dx [B*H*W, C], dw [C*K*K], db [C]. */
export function depthwiseBackward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
  g: DwGeometry,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { B, H, W, C, K, stride, pad } = g;
  const { Ho, Wo } = outSize(g);
  const dx = new Float64Array(B * H * W * C);
  const dw = new Float64Array(C * K * K);
  const db = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const o = (b * Ho + oy) * Wo + ox;
        for (let c = 0; c < C; c++) {
          const g0 = gy[o * C + c]!;
          db[c]! += g0;
          for (let ky = 0; ky < K; ky++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < K; kx++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              const i = ((b * H + iy) * W + ix) * C + c;
              const t = (c * K + ky) * K + kx;
              dx[i]! += w[t]! * g0;
              dw[t]! += x[i]! * g0;
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
