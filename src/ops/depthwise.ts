/**
 * Depthwise 2-D convolution (shaders/depthwise.wgsl): ConvNeXt's 7x7 dwconv, dense or
 * submanifold sparse. Weights keep PyTorch's layout [C, 1, K, K] (groups = C).
 *
 * Backward: dx is the same gather over the flipped kernel (no scatter, no atomics); dw and db
 * are one split reduction over the output rows (partials per chunk of rows, then chunks.wgsl).
 */
import type { DType } from '../tensor/precision.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import { chunkPlan, sumChunks } from './chunks.ts';
import { featureLayout, markGrad, windowOutput, windowParams, type WindowGeometry } from './common.ts';
import type { UniformValues } from '../gpu/gpu.ts';

const WG = 64;

export interface DepthwiseOptions {
  /** Zero padding on each side; default K >> 1 ("same" for odd K at stride 1). */
  padding?: number;
  stride?: number;
  /** Output layout; default `x.layout.resized(Hout, Wout)` (the same layout at stride 1). */
  outLayout?: SiteLayout;
}



function packParams(g: WindowGeometry, rows: number, chunkRows = 0): UniformValues {
  return { ...windowParams(g, rows), chunk_rows: chunkRows };
}

/** Runs a row-walking pass (forward or backward_input) over `rows` rows. */
function walkRows(
  ctx: Context,
  entry: 'forward' | 'backward_input',
  g: WindowGeometry,
  rows: number,
  bufs: Record<string, GPUBuffer | null>,
  hasBias: boolean,
  act: DType,
): void {
  const gpu = ctx.gpu;
  const p = gpu.pipeline('depthwise', entry, { SPARSE: !g.inL.isDense, HAS_BIAS: hasBias }, { act });
  const threads = rows * Math.ceil(g.C / 4);
  // A profile's FLOPs: 2 x rows walked x C x k^2 (the window taps of each walked row).
  const note = { tag: `depthwise.${entry}`, flops: 2 * rows * g.C * g.K * g.K };
  gpu.noting(note, () => gpu.dispatch(p, bufs, packParams(g, rows), gpu.grid(Math.ceil(threads / WG))));
}

/** Sparse tables bound by name; null for a dense layout (indices are computed, SPARSE is off). */
function tables(ctx: Context, walked: SiteLayout, read: SiteLayout): Record<string, GPUBuffer | null> {
  return { sites: ctx.layoutBuffers(walked).sites, row_of: ctx.layoutBuffers(read).rowOf };
}

/**
 * ConvNeXt's depthwise conv: x [rows, C] (dense or sparse), w [C, 1, k, k] (OIHW, groups = C),
 * bias [C] | null, stride 1 and padding k >> 1 by default. Submanifold: outputs at the output
 * layout's active sites; inactive neighbours read 0.
 */
export function depthwiseConv2d(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  opts: DepthwiseOptions = {},
): Tensor {
  const ctx = x.ctx;
  featureLayout('depthwiseConv2d', x);
  const C = x.channels;
  const K = w.shape[2]!;
  if (w.shape.length !== 4 || w.shape[0] !== C || w.shape[1] !== 1 || w.shape[3] !== K) {
    throw new Error(`depthwiseConv2d: weight must be [${C}, 1, k, k], got [${w.shape}]`);
  }
  if (bias && bias.size !== C) throw new Error(`depthwiseConv2d: bias has ${bias.size} values for ${C} channels`);
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? K >> 1;
  if (!(stride >= 1) || !(pad >= 0) || !Number.isInteger(stride) || !Number.isInteger(pad)) {
    throw new Error(`depthwiseConv2d: bad stride ${stride} / padding ${pad}`);
  }
  const { inL, outL } = windowOutput('depthwiseConv2d', x, K, K, stride, pad, opts.outLayout);
  const g: WindowGeometry = { C, K, stride, pad, inL, outL };

  // Stored as x is (the activation dtype); w, bias and their gradients are f32.
  const act = x.dtype;
  const y = markGrad(ctx.empty([outL.rows, C], outL, act), x, w, bias);
  const bufs = { src: x.buffer, w: w.buffer, bias: bias?.buffer ?? null, dst: y.buffer, ...tables(ctx, outL, inL) };
  walkRows(ctx, 'forward', g, outL.rows, bufs, bias !== null, act);

  if (y.requiresGrad) {
    ctx.tape.record('depthwiseConv2d', [x, w, bias] as const, y, (gy) => {
      // dx[i] = sum over the outputs o whose window holds i of w[tap(o, i)] * gy[o].
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty(x.shape, inL, act);
        const b = { src: gy.buffer, w: w.buffer, dst: dx.buffer, ...tables(ctx, inL, outL) };
        walkRows(ctx, 'backward_input', g, inL.rows, b, false, act);
      }
      // dw[c, tap] = sum_o gy[o, c] * x(o + tap, c); db[c] = sum_o gy[o, c].
      let dw: Tensor | null = null;
      let db: Tensor | null = null;
      if (w.requiresGrad || bias?.requiresGrad) {
        const kk = K * K;
        const width = C * kk + C;
        const plan = chunkPlan(outL.rows);
        const partial = ctx.empty([plan.chunks, width]);
        const gpu = ctx.gpu;
        const p = gpu.pipeline('depthwise', 'backward_weight', { SPARSE: !inL.isDense }, { act, out: 'f32' });
        const b = { src: x.buffer, gy: gy.buffer, dst: partial.buffer, ...tables(ctx, outL, inL) };
        const groupsX = Math.ceil((Math.ceil(C / 4) * (kk + 1)) / WG);
        const note = { tag: 'depthwise.backward_weight', flops: 2 * outL.rows * C * kk };
        const sums = gpu.noting(note, () => {
          gpu.dispatch(p, b, packParams(g, outL.rows, plan.chunkRows), [groupsX, plan.chunks]);
          return sumChunks(ctx, partial, plan.chunks, width);
        });
        if (w.requiresGrad) {
          dw = ctx.empty(w.shape);
          gpu.copy(sums.buffer, dw.buffer, C * kk * 4);
        }
        if (bias?.requiresGrad) {
          db = ctx.empty(bias.shape);
          gpu.copy(sums.buffer, db.buffer, C * 4, C * kk * 4);
        }
      }
      return [dx, dw, db];
    });
  }
  return y;
}
