/**
 * Float64 references for SparK's masked patch loss (src/ops/loss.ts), written from the
 * official spark.py (lines 112-146).
 *
 * Images are dense channels-last rows: value (b, y, x, c) at ((b*H + y)*W + x)*3 + c.
 * The mask has ph x pw patches per image of side p = H / ph; visible[(b*ph + i)*pw + j] = 1
 * where the patch is kept. Patch g = (b*ph + i)*pw + j.
 *
 * Two independent formulations:
 *  - `maskedPatchLoss` / `maskedPatchLossGrad` / `reconstruction`: walk the image in raster
 *    order and accumulate into the patch each site belongs to (the order our kernel does not use);
 *  - `officialLoss`: a line-by-line transcription of the official code: NCHW image,
 *    patchify with einsum('bchpwq->bhwpqc'), torch.mean / unbiased torch.var over dim -1.
 */

export interface Grid {
  batch: number;
  height: number;
  width: number;
  /** Patches per column and per row. */
  ph: number;
  pw: number;
}

const C = 3;

function patchSide(g: Grid): number {
  return g.height / g.ph;
}

/** The patch of grid site (b, y, x). */
function patchOf(g: Grid, b: number, y: number, x: number): number {
  const p = patchSide(g);
  return (b * g.ph + Math.floor(y / p)) * g.pw + Math.floor(x / p);
}

/** Calls f(flat index, patch) for every value of the image in raster order. */
function forEachValue(g: Grid, f: (e: number, patch: number) => void): void {
  for (let b = 0; b < g.batch; b++)
    for (let y = 0; y < g.height; y++)
      for (let x = 0; x < g.width; x++) {
        const patch = patchOf(g, b, y, x);
        for (let c = 0; c < C; c++) f(((b * g.height + y) * g.width + x) * C + c, patch);
      }
}

/** Per-patch mean and std = sqrt(unbiased variance + 1e-6) of the image (two passes). */
export function patchStats(x: ArrayLike<number>, g: Grid): { mean: Float64Array; std: Float64Array } {
  const n = patchSide(g) ** 2 * C;
  const patches = g.batch * g.ph * g.pw;
  const mean = new Float64Array(patches);
  const ss = new Float64Array(patches);
  forEachValue(g, (e, q) => (mean[q]! += x[e]! / n));
  forEachValue(g, (e, q) => (ss[q]! += (x[e]! - mean[q]!) ** 2));
  const std = ss.map((s) => Math.sqrt(s / (n - 1) + 1e-6));
  return { mean, std };
}

/** The normalized target t = (x - mean) / std of every value. */
export function target(x: ArrayLike<number>, g: Grid): Float64Array {
  const { mean, std } = patchStats(x, g);
  const t = new Float64Array(x.length);
  forEachValue(g, (e, q) => (t[e] = (x[e]! - mean[q]!) / std[q]!));
  return t;
}

function maskedCount(visible: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < visible.length; i++) n += visible[i] ? 0 : 1;
  return n;
}

/** L = sum over masked patches of mean((rec - t)^2) / (nMasked + 1e-8). */
export function maskedPatchLoss(rec: ArrayLike<number>, x: ArrayLike<number>, g: Grid, visible: ArrayLike<number>): number {
  const n = patchSide(g) ** 2 * C;
  const t = target(x, g);
  let sum = 0;
  forEachValue(g, (e, q) => {
    if (!visible[q]) sum += (rec[e]! - t[e]!) ** 2 / n;
  });
  return sum / (maskedCount(visible) + 1e-8);
}

/** dL/d rec = 2 (rec - t) / n / (nMasked + 1e-8) at masked patches, 0 at visible ones. */
export function maskedPatchLossGrad(
  rec: ArrayLike<number>,
  x: ArrayLike<number>,
  g: Grid,
  visible: ArrayLike<number>,
): Float64Array {
  const n = patchSide(g) ** 2 * C;
  const denom = maskedCount(visible) + 1e-8;
  const t = target(x, g);
  const grad = new Float64Array(rec.length);
  forEachValue(g, (e, q) => {
    if (!visible[q]) grad[e] = (2 * (rec[e]! - t[e]!)) / n / denom;
  });
  return grad;
}

/** The official visualisation: masked input, de-normalized prediction, and the composite. */
export function reconstruction(rec: ArrayLike<number>, x: ArrayLike<number>, g: Grid, visible: ArrayLike<number>) {
  const { mean, std } = patchStats(x, g);
  const masked = new Float64Array(x.length);
  const recon = new Float64Array(x.length);
  const composite = new Float64Array(x.length);
  forEachValue(g, (e, q) => {
    masked[e] = x[e]! * (visible[q] ? 1 : 0);
    recon[e] = rec[e]! * std[q]! + mean[q]!;
    composite[e] = visible[q] ? x[e]! : recon[e]!;
  });
  return { masked, reconstruction: recon, composite };
}

// ---- the official code, transcribed ---------------------------------------------------------

/** Rows [B*H*W, C] -> NCHW, as the official code holds images. */
function toNCHW(rows: ArrayLike<number>, g: Grid): Float64Array {
  const out = new Float64Array(rows.length);
  for (let b = 0; b < g.batch; b++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < g.height; y++)
        for (let x = 0; x < g.width; x++) {
          out[((b * C + c) * g.height + y) * g.width + x] = rows[((b * g.height + y) * g.width + x) * C + c]!;
        }
  return out;
}

/**
 * spark.py patchify: (B,C,H,W) -> reshape (B,C,h,p,w,p) -> einsum('bchpwq->bhwpqc') ->
 * (B, h*w, p*p*C). Returns [B][L] arrays of p*p*C values in (p, q, c) order.
 */
export function patchify(nchw: Float64Array, g: Grid): Float64Array[][] {
  const p = patchSide(g);
  const out: Float64Array[][] = [];
  for (let b = 0; b < g.batch; b++) {
    const row: Float64Array[] = [];
    for (let h = 0; h < g.ph; h++)
      for (let w = 0; w < g.pw; w++) {
        const v = new Float64Array(p * p * C);
        for (let pp = 0; pp < p; pp++)
          for (let q = 0; q < p; q++)
            for (let c = 0; c < C; c++) {
              v[(pp * p + q) * C + c] = nchw[((b * C + c) * g.height + h * p + pp) * g.width + w * p + q]!;
            }
        row.push(v);
      }
    out.push(row);
  }
  return out;
}

/**
 * The official forward_loss, transcribed:
 *   inp = patchify(inp_bchw); mean = inp.mean(-1); var = (inp.var(-1) + 1e-6) ** .5
 *   inp = (inp - mean) / var; l2 = ((rec - inp) ** 2).mean(dim=2)
 *   non_active = ~active; recon_loss = l2.mul_(non_active).sum() / (non_active.sum() + 1e-8)
 * `rec` here is the prediction already patchified (the decoder's output through patchify).
 */
export function officialLoss(recRows: ArrayLike<number>, xRows: ArrayLike<number>, g: Grid, visible: ArrayLike<number>): number {
  const inp = patchify(toNCHW(xRows, g), g);
  const rec = patchify(toNCHW(recRows, g), g);
  let lossSum = 0;
  let nonActive = 0;
  for (let b = 0; b < g.batch; b++)
    for (let l = 0; l < g.ph * g.pw; l++) {
      const v = inp[b]![l]!;
      const N = v.length;
      const mean = v.reduce((s, a) => s + a, 0) / N;
      const variance = v.reduce((s, a) => s + (a - mean) ** 2, 0) / (N - 1); // torch.var: unbiased
      const std = (variance + 1e-6) ** 0.5;
      let l2 = 0;
      for (let k = 0; k < N; k++) l2 += (rec[b]![l]![k]! - (v[k]! - mean) / std) ** 2;
      l2 /= N;
      const na = visible[b * g.ph * g.pw + l] ? 0 : 1;
      lossSum += l2 * na;
      nonActive += na;
    }
  return lossSum / (nonActive + 1e-8);
}
