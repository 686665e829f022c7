/**
 * Float64 reference for max pooling on a DENSE channels-last grid x [B*H*W, C] (for sparse
 * maps: the zero-filled map, as the official SparK simulation pools it). Out-of-image padding
 * is ignored; the window is scanned in raster order and only a strictly larger value replaces
 * the best, so the FIRST maximum wins and receives the gradient (PyTorch's rule).
 */

export interface PoolGeometry {
  B: number;
  H: number;
  W: number;
  C: number;
  K: number;
  stride: number;
  pad: number;
}

export function poolOutSize(g: PoolGeometry): { Ho: number; Wo: number } {
  return {
    Ho: Math.floor((g.H + 2 * g.pad - g.K) / g.stride) + 1,
    Wo: Math.floor((g.W + 2 * g.pad - g.K) / g.stride) + 1,
  };
}

/** y [B*Ho*Wo, C] and, per output element, the grid index of the winning input site. */
export function maxPoolForward(x: ArrayLike<number>, g: PoolGeometry): { y: Float64Array; arg: Int32Array } {
  const { B, H, W, C, K, stride, pad } = g;
  const { Ho, Wo } = poolOutSize(g);
  const y = new Float64Array(B * Ho * Wo * C);
  const arg = new Int32Array(B * Ho * Wo * C).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const o = (b * Ho + oy) * Wo + ox;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let ky = 0; ky < K; ky++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < K; kx++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              const site = (b * H + iy) * W + ix;
              const v = x[site * C + c]!;
              if (v > best) {
                best = v;
                at = site;
              }
            }
          }
          y[o * C + c] = best;
          arg[o * C + c] = at;
        }
      }
    }
  }
  return { y, arg };
}

/** dx [B*H*W, C]: each output's gradient added at its winning site. */
export function maxPoolBackward(gy: ArrayLike<number>, arg: Int32Array, g: PoolGeometry): Float64Array {
  const dx = new Float64Array(g.B * g.H * g.W * g.C);
  for (let i = 0; i < arg.length; i++) {
    const c = i % g.C;
    dx[arg[i]! * g.C + c]! += gy[i]!;
  }
  return dx;
}
