/**
 * A tiny float64 conv on the CPU for the auto-tune's check of a candidate kernel configuration
 * on a small awkward shape (autotune.ts). The tests' own reference (test/reference/conv2d.ts)
 * is not importable from src; this one is deliberately the plainest loop nest, over a
 * `ConvGeometry` with its row layouts (sparse: submanifold = dense conv of the zero-filled
 * map, kept at the active output rows, as in the shader's header).
 */
import type { ConvGeometry, ConvPass } from './conv-plan.ts';

/** Dense grid index of each stored row (identity for dense layouts). */
function siteOf(layout: ConvGeometry['inL']): (r: number) => number {
  return layout ? (r) => layout.site(r) : (r) => r;
}

/**
 * The pass's output as float64, from float32 operands in the kernels' layouts:
 * fwd (x [inRows, cin], w OIHW) -> y [outRows, cout]; dx (dy [outRows, cout], w) -> dx
 * [inRows, cin]; dw (x, dy) -> dW OIHW [cout, cin/groups, kh, kw].
 */
export function referenceConvPass(g: ConvGeometry, pass: ConvPass, a: Float32Array, b: Float32Array): Float64Array {
  const cinG = g.cin / g.groups;
  const coutG = g.cout / g.groups;
  const inGrid = g.batch * g.inH * g.inW;
  const outGrid = g.batch * g.outH * g.outW;
  // Scatter the row-stored operands onto dense grids (inactive sites stay 0).
  const toGrid = (t: Float32Array, rows: number, C: number, layout: ConvGeometry['inL'], grid: number) => {
    const out = new Float64Array(grid * C);
    const site = siteOf(layout);
    for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) out[site(r) * C + c] = t[r * C + c]!;
    return out;
  };
  const w = pass === 'dw' ? null : b;
  const x = pass === 'dx' ? null : toGrid(a, g.inRows, g.cin, g.inL, inGrid);
  const dy = pass === 'fwd' ? null : toGrid(pass === 'dx' ? a : b, g.outRows, g.cout, g.outL, outGrid);
  const yOut = new Float64Array(pass === 'fwd' ? outGrid * g.cout : 0);
  const dxOut = new Float64Array(pass === 'dx' ? inGrid * g.cin : 0);
  const dwOut = new Float64Array(pass === 'dw' ? g.cout * cinG * g.kh * g.kw : 0);
  const outSite = siteOf(g.outL);
  for (let r = 0; r < g.outRows; r++) {
    const o = outSite(r);
    const bi = Math.floor(o / (g.outH * g.outW));
    const oy = Math.floor(o / g.outW) % g.outH;
    const ox = o % g.outW;
    for (let ky = 0; ky < g.kh; ky++) {
      const iy = oy * g.stride - g.pad + ky;
      if (iy < 0 || iy >= g.inH) continue;
      for (let kx = 0; kx < g.kw; kx++) {
        const ix = ox * g.stride - g.pad + kx;
        if (ix < 0 || ix >= g.inW) continue;
        const i = (bi * g.inH + iy) * g.inW + ix;
        for (let co = 0; co < g.cout; co++) {
          const grp = Math.floor(co / coutG);
          for (let ci = 0; ci < cinG; ci++) {
            const wi = ((co * cinG + ci) * g.kh + ky) * g.kw + kx;
            const xi = i * g.cin + grp * cinG + ci;
            if (pass === 'fwd') yOut[o * g.cout + co]! += x![xi]! * w![wi]!;
            else if (pass === 'dx') dxOut[xi]! += dy![o * g.cout + co]! * w![wi]!;
            else dwOut[wi]! += dy![o * g.cout + co]! * x![xi]!;
          }
        }
      }
    }
  }
  if (pass === 'dw') return dwOut;
  // Gather the result at the stored rows of its layout.
  const [grid, rows, C, layout] = pass === 'fwd' ? [yOut, g.outRows, g.cout, g.outL] : [dxOut, g.inRows, g.cin, g.inL];
  const out = new Float64Array(rows * C);
  const site = siteOf(layout);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) out[r * C + c] = grid[site(r) * C + c]!;
  return out;
}
