/**
 * Moving rows between site layouts of one grid (shaders/sparse.wgsl): SparK's densify with the
 * mask token, sparse -> dense with zeros, dense -> active rows. All three are one "relayout"
 * kernel (a partial permutation of rows), whose backward is the relayout back; the mask token's
 * gradient is a split reduction over the inactive sites. Rows keep x's dtype (the activation
 * dtype); the token and its gradient are f32.
 */
import { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import { chunkPlan, sumChunks } from './chunks.ts';
import { featureLayout, markGrad } from './common.ts';

/**
 * y [to.rows, C] on `to`: the row of x at each site of `to` (x on `from`, same grid), or
 * token[c] / 0 where `from` has no row. Not recorded.
 */
function relayout(x: Tensor, from: SiteLayout, to: SiteLayout, token: Tensor | null): Tensor {
  const ctx = x.ctx;
  const gpu = ctx.gpu;
  const C = x.channels;
  const y = ctx.empty([to.rows, C], to, x.dtype);
  // Null tables and token where their constants (DST_SPARSE, SRC_SPARSE, USE_TOKEN) are off.
  const bufs = { x: x.buffer, token: token?.buffer ?? null, sites: ctx.layoutBuffers(to).sites, row_of: ctx.layoutBuffers(from).rowOf, y: y.buffer };
  const p = gpu.pipeline('sparse', 'relayout', {
    SRC_SPARSE: !from.isDense,
    DST_SPARSE: !to.isDense,
    USE_TOKEN: token !== null,
  }, { act: x.dtype });
  const n = to.rows * C;
  gpu.dispatch(p, bufs, { n, C, chunk_rows: 0 }, gpu.grid(Math.ceil(n / 256)));
  return y;
}

function denseOf(layout: SiteLayout): SiteLayout {
  return SiteLayout.dense(layout.batch, layout.height, layout.width);
}

/** dtoken[c] = sum of gy[s, c] over the sites s that `layout` leaves inactive (gy dense). */
function tokenGrad(ctx: Context, gy: Tensor, layout: SiteLayout, C: number): Tensor {
  const gpu = ctx.gpu;
  if (layout.isDense) return ctx.zeros([C]);
  const plan = chunkPlan(layout.gridSize);
  const partial = ctx.empty([plan.chunks, C]);
  const p = gpu.pipeline('sparse', 'token_partial', {}, { act: gy.dtype });
  const packed = { n: layout.gridSize, C, chunk_rows: plan.chunkRows };
  const rowOf = ctx.layoutBuffers(layout).rowOf!;
  gpu.dispatch(p, { gy: gy.buffer, row_of: rowOf, partial: partial.buffer }, packed, [Math.ceil(C / 64), plan.chunks]);
  return sumChunks(ctx, partial, plan.chunks, C);
}

/**
 * SparK densify: sparse x [rows, C] -> dense [B*H*W, C] on SiteLayout.dense(B, H, W). Active
 * sites copy their row, inactive sites get token[c] (the mask token, a [C] parameter).
 * Backward: dx = gy at the active sites; dtoken = sum of gy over the inactive sites.
 */
export function maskFill(x: Tensor, token: Tensor): Tensor {
  const layout = featureLayout('maskFill', x);
  const C = x.channels;
  if (token.size !== C) throw new Error(`maskFill: token has ${token.size} values for ${C} channels`);
  const dense = denseOf(layout);
  const y = markGrad(relayout(x, layout, dense, token), x, token);
  if (y.requiresGrad) {
    x.ctx.tape.record('maskFill', [x, token] as const, y, (gy) => [
      x.requiresGrad ? relayout(gy, dense, layout, null) : null,
      token.requiresGrad ? tokenGrad(x.ctx, gy, layout, C) : null,
    ]);
  }
  return y;
}

/** Sparse -> dense [B*H*W, C] with zeros at inactive sites (the official representation). Backward: gather. */
export function scatterToDense(x: Tensor): Tensor {
  const layout = featureLayout('scatterToDense', x);
  const dense = denseOf(layout);
  const y = markGrad(relayout(x, layout, dense, null), x);
  if (y.requiresGrad) {
    x.ctx.tape.record('scatterToDense', [x] as const, y, (gy) => [relayout(gy, dense, layout, null)]);
  }
  return y;
}

/**
 * The rows of `layout`'s active sites, taken from x on the same grid (x is normally dense; a
 * sparse x gives zeros at sites it lacks). Backward: scatter with zeros.
 */
export function gatherSites(x: Tensor, layout: SiteLayout): Tensor {
  const from = featureLayout('gatherSites', x);
  if (!from.sameGrid(layout)) {
    throw new Error(
      `gatherSites: x is on a ${from.batch}x${from.height}x${from.width} grid, ` +
        `the layout on ${layout.batch}x${layout.height}x${layout.width}`,
    );
  }
  const y = markGrad(relayout(x, from, layout, null), x);
  if (y.requiresGrad) {
    x.ctx.tape.record('gatherSites', [x] as const, y, (gy) => [relayout(gy, layout, from, null)]);
  }
  return y;
}
