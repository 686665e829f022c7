/**
 * Max pooling (shaders/pool.wgsl), dense or sparse, matching the official SparK simulation
 * (dense max pool of the zero-filled map, then masked). The forward records, per output
 * element, the input row of the first maximum; the backward is a gather over it.
 */
import type { DType } from '../tensor/precision.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import { featureLayout, markGrad, windowOutput, windowParams, type WindowGeometry } from './common.ts';

const WG = 64;

export interface MaxPoolOptions {
  kernel?: number;
  stride?: number;
  padding?: number;
  /** Output layout; default `x.layout.resized(Hout, Wout)`. */
  outLayout?: SiteLayout;
}



/** One pass; src and dst (x and y, or dy and dx) are stored as `act`. */
function run(
  ctx: Context, entry: 'forward' | 'backward', g: WindowGeometry, walked: SiteLayout, read: SiteLayout,
  bufs: Record<string, GPUBuffer | null>, act: DType,
): void {
  const gpu = ctx.gpu;
  const sites = ctx.layoutBuffers(walked).sites;
  const rowOf = ctx.layoutBuffers(read).rowOf;
  // Null for a dense layout: SPARSE is off and the indices are computed.
  bufs.sites = sites;
  bufs.row_of = rowOf;
  const rows = walked.rows;
  const p = gpu.pipeline('pool', entry, { SPARSE: !g.inL.isDense }, { act });
  gpu.dispatch(p, bufs, windowParams(g, rows), gpu.grid(Math.ceil((rows * Math.ceil(g.C / 4)) / WG)));
}

/**
 * ResNet's max pool (3x3, stride 2, pad 1 by default), sparse or dense: the output layout is
 * `x.layout.resized(Hout, Wout)`. Inactive in-image neighbours count as 0, out-of-image padding
 * is ignored. Backward routes the gradient to the FIRST maximum in raster order of the window
 * (PyTorch's rule); when that is an inactive site the gradient is dropped.
 */
export function maxPool2d(x: Tensor, opts: MaxPoolOptions = {}): Tensor {
  const ctx = x.ctx;
  featureLayout('maxPool2d', x);
  const K = opts.kernel ?? 3;
  const stride = opts.stride ?? 2;
  const pad = opts.padding ?? 1;
  // PyTorch's own constraint; it also guarantees every window holds an in-image site.
  if (!(K >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= K) || ![K, stride, pad].every(Number.isInteger)) {
    throw new Error(`maxPool2d: bad kernel ${K} / stride ${stride} / padding ${pad} (padding must be <= kernel / 2)`);
  }
  const { inL, outL } = windowOutput('maxPool2d', x, K, K, stride, pad, opts.outLayout);
  const C = x.channels;
  const g: WindowGeometry = { C, K, stride, pad, inL, outL };
  // Stored as x is (the activation dtype); the argmax rows are i32.
  const act = x.dtype;
  const y = markGrad(ctx.empty([outL.rows, C], outL, act), x);
  // Argmax rows as i32 in a tensor-sized buffer, so the scope owns its lifetime.
  const argmax = ctx.empty([outL.rows, C]);
  run(ctx, 'forward', g, outL, inL, { src: x.buffer, dst: y.buffer, argmax: argmax.buffer }, act);
  if (y.requiresGrad) {
    ctx.tape.record('maxPool', [x] as const, y, (gy) => {
      const dx = ctx.empty(x.shape, inL, act);
      run(ctx, 'backward', g, inL, outL, { src: gy.buffer, dst: dx.buffer, argmax: argmax.buffer }, act);
      return [dx];
    });
  }
  return y;
}
