/**
 * Float64 references for conv2d and convTranspose2d on DENSE channels-last grids: a feature map
 * is x[B*H*W, C] with row (b*H + y)*W + x. Weights keep PyTorch's layouts: conv OIHW
 * [Cout, Cin/groups, kh, kw], transposed conv IOHW [Cin, Cout, kh, kw]. Sparse results are
 * defined from these: zero-fill the inactive sites, run densely, keep the active rows (the
 * official SparK simulation; see test/reference/sparse.ts for scatter and gather).
 *
 * Written as plain loops over every (output, tap) pair, in the direction of the definition;
 * the transposed conv is written as its own scatter (not via conv), so the GPU's "convT =
 * adjoint conv" identity is tested, not assumed.
 */

export interface ConvGeometry {
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  groups: number;
}

export function convOutSize(g: ConvGeometry): { Ho: number; Wo: number } {
  return {
    Ho: Math.floor((g.H + 2 * g.pad - g.kh) / g.stride) + 1,
    Wo: Math.floor((g.W + 2 * g.pad - g.kw) / g.stride) + 1,
  };
}

/**
 * y[(b*Ho + oy)*Wo + ox, co] = bias[co] + sum over ci in co's group, ky, kx of
 *   w[co, ci, ky, kx] * x(b, oy*s - p + ky, ox*s - p + kx, group*Cin_g + ci)   (0 outside).
 */
export function convForward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  g: ConvGeometry,
): Float64Array {
  const { B, H, W, Cin, Cout, kh, kw, stride, pad, groups } = g;
  const { Ho, Wo } = convOutSize(g);
  const cinG = Cin / groups;
  const coutG = Cout / groups;
  const y = new Float64Array(B * Ho * Wo * Cout);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const o = (b * Ho + oy) * Wo + ox;
        for (let co = 0; co < Cout; co++) {
          const c0 = Math.floor(co / coutG) * cinG;
          let acc = bias ? bias[co]! : 0;
          for (let ci = 0; ci < cinG; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride - pad + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride - pad + kx;
                if (ix < 0 || ix >= W) continue;
                acc += w[((co * cinG + ci) * kh + ky) * kw + kx]! * x[((b * H + iy) * W + ix) * Cin + c0 + ci]!;
              }
            }
          }
          y[o * Cout + co] = acc;
        }
      }
    }
  }
  return y;
}

/** Gradients of L = sum(gy * convForward(x, w, b)): dx [B*H*W, Cin], dw (OIHW), db [Cout]. */
export function convBackward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
  g: ConvGeometry,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { B, H, W, Cin, Cout, kh, kw, stride, pad, groups } = g;
  const { Ho, Wo } = convOutSize(g);
  const cinG = Cin / groups;
  const coutG = Cout / groups;
  const dx = new Float64Array(B * H * W * Cin);
  const dw = new Float64Array(Cout * cinG * kh * kw);
  const db = new Float64Array(Cout);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        const o = (b * Ho + oy) * Wo + ox;
        for (let co = 0; co < Cout; co++) {
          const g0 = gy[o * Cout + co]!;
          db[co]! += g0;
          const c0 = Math.floor(co / coutG) * cinG;
          for (let ci = 0; ci < cinG; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride - pad + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride - pad + kx;
                if (ix < 0 || ix >= W) continue;
                const i = ((b * H + iy) * W + ix) * Cin + c0 + ci;
                const t = ((co * cinG + ci) * kh + ky) * kw + kx;
                dx[i]! += w[t]! * g0;
                dw[t]! += x[i]! * g0;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

export interface ConvTransposeGeometry {
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

export function convTransposeOutSize(g: ConvTransposeGeometry): { Ho: number; Wo: number } {
  return { Ho: (g.H - 1) * g.stride - 2 * g.pad + g.kh, Wo: (g.W - 1) * g.stride - 2 * g.pad + g.kw };
}

/**
 * PyTorch's ConvTranspose2d as a scatter: every input site (iy, ix) adds
 *   x[b, iy, ix, ci] * w[ci, co, ky, kx]  to output (iy*s - p + ky, ix*s - p + kx) when inside.
 */
export function convTransposeForward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  g: ConvTransposeGeometry,
): Float64Array {
  const { B, H, W, Cin, Cout, kh, kw, stride, pad } = g;
  const { Ho, Wo } = convTransposeOutSize(g);
  const y = new Float64Array(B * Ho * Wo * Cout);
  if (bias) for (let r = 0; r < B * Ho * Wo; r++) for (let co = 0; co < Cout; co++) y[r * Cout + co] = bias[co]!;
  for (let b = 0; b < B; b++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        const i = (b * H + iy) * W + ix;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * stride - pad + ky;
          if (oy < 0 || oy >= Ho) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * stride - pad + kx;
            if (ox < 0 || ox >= Wo) continue;
            const o = (b * Ho + oy) * Wo + ox;
            for (let ci = 0; ci < Cin; ci++) {
              const xv = x[i * Cin + ci]!;
              for (let co = 0; co < Cout; co++) {
                y[o * Cout + co]! += xv * w[((ci * Cout + co) * kh + ky) * kw + kx]!;
              }
            }
          }
        }
      }
    }
  }
  return y;
}

/** Gradients of L = sum(gy * convTransposeForward(x, w, b)): dx, dw (IOHW), db. */
export function convTransposeBackward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
  g: ConvTransposeGeometry,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { B, H, W, Cin, Cout, kh, kw, stride, pad } = g;
  const { Ho, Wo } = convTransposeOutSize(g);
  const dx = new Float64Array(B * H * W * Cin);
  const dw = new Float64Array(Cin * Cout * kh * kw);
  const db = new Float64Array(Cout);
  for (let r = 0; r < B * Ho * Wo; r++) for (let co = 0; co < Cout; co++) db[co]! += gy[r * Cout + co]!;
  for (let b = 0; b < B; b++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        const i = (b * H + iy) * W + ix;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * stride - pad + ky;
          if (oy < 0 || oy >= Ho) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * stride - pad + kx;
            if (ox < 0 || ox >= Wo) continue;
            const o = (b * Ho + oy) * Wo + ox;
            for (let ci = 0; ci < Cin; ci++) {
              for (let co = 0; co < Cout; co++) {
                const t = ((ci * Cout + co) * kh + ky) * kw + kx;
                dx[i * Cin + ci]! += w[t]! * gy[o * Cout + co]!;
                dw[t]! += x[i * Cin + ci]! * gy[o * Cout + co]!;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
