/**
 * 2-D convolution, dense or submanifold sparse, and the dense transposed convolution, as
 * implicit GEMMs (shaders/conv2d.wgsl; launch rules in conv-plan.ts, run by conv-launch.ts).
 *
 * conv2d:           forward = gather-GEMM over the output rows; dx = stride 1: the forward
 *                   GEMM of dy with the flipped weight, else a gather-GEMM over the input rows
 *                   (dense: stride^2 sub-pixel GEMMs); dw = split-K GEMM over the output rows;
 *                   db = split column sums of dy. Packed weights and split-K partials live
 *                   only as long as the dispatch that reads them (conv-launch.ts).
 * convTranspose2d:  the adjoint of a conv whose OIHW weight is the IOHW weight given, so its
 *                   forward is that conv's dx pass, its dx that conv's forward, and its dw that
 *                   conv's dw with the roles of x and dy swapped.
 * Gradient rule (as llm.c): activation gradients are fresh tensors, parameters accumulate (the
 * tape does the +=). Work for an input that needs no gradient is skipped.
 */
import { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { featureLayout, markGrad, windowOutput } from './common.ts';
import { columnSums } from './chunks.ts';
import { forward, inputGrad, weightGrad } from './conv-launch.ts';
import type { ConvGeometry } from './conv-plan.ts';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  groups?: number;
  /** Output layout; default `x.layout.resized(Hout, Wout)` (a patch mask at the coarser grid). */
  outLayout?: SiteLayout;
}

function checkInt(op: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${op}: ${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * x: feature map [rows, Cin] (dense or sparse layout); w: [Cout, Cin/groups, kh, kw] OIHW;
 * bias [Cout] or null. Output: [outRows, Cout] on opts.outLayout ?? x.layout.resized(Hout, Wout),
 * Hout = floor((H + 2p - kh)/s) + 1. Sparse = submanifold: outputs only at active output sites,
 * inactive input sites read as zero.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const ctx = x.ctx;
  featureLayout('conv2d', x);
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  const groups = opts.groups ?? 1;
  checkInt('conv2d', 'stride', stride, 1);
  checkInt('conv2d', 'padding', pad, 0);
  checkInt('conv2d', 'groups', groups, 1);
  const cin = x.channels;
  const [cout, cinG, kh, kw] = w.shape as [number, number, number, number];
  if (w.shape.length !== 4 || cin % groups !== 0 || cout % groups !== 0 || cinG !== cin / groups) {
    throw new Error(`conv2d: weight [${w.shape}] does not fit ${cin} input channels in ${groups} groups (want [Cout, Cin/groups, kh, kw])`);
  }
  if (bias && bias.size !== cout) throw new Error(`conv2d: bias has ${bias.size} values for ${cout} channels`);
  const { inL, outL, outH, outW } = windowOutput('conv2d', x, kh, kw, stride, pad, opts.outLayout);
  const g: ConvGeometry = {
    batch: inL.batch, inH: inL.height, inW: inL.width, outH, outW, cin, cout, groups, kh, kw, stride, pad,
    inRows: inL.rows, outRows: outL.rows, inL, outL,
    pointwise: kh === 1 && kw === 1 && stride === 1 && pad === 0 && outL.equals(inL),
  };

  // The output is stored as the input is (the activation dtype, precision.ts).
  const act = x.dtype;
  const y = markGrad(ctx.empty([outL.rows, cout], outL, act), x, w, bias);
  forward(ctx, g, act, x.buffer, w, bias?.buffer ?? null, y.buffer);

  if (y.requiresGrad) {
    ctx.tape.record('conv2d', [x, w, bias] as const, y, (gy) => {
      // dx[i, ci] = sum over (tap, co) of dy[out(i, tap), co] * w[co, ci, tap]
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty(x.shape, inL, act);
        inputGrad(ctx, g, act, gy.buffer, w, null, dx.buffer);
      }
      // dw[co, ci, tap] = sum over output rows m of dy[m, co] * x[in(m, tap), ci]; db = sum of dy
      const dw = w.requiresGrad ? weightGrad(ctx, g, act, x.buffer, gy.buffer) : null;
      const db = bias?.requiresGrad ? columnSums(ctx, gy.buffer, outL.rows, cout, act) : null;
      return [dx, dw, db];
    });
  }
  return y;
}

/**
 * Dense only. x [rows, Cin] dense layout; w [Cin, Cout, kh, kw] IOHW (PyTorch ConvTranspose2d);
 * Hout = (H-1)*s - 2p + kh. Computed as the input-gradient pass of the conv from the output grid
 * to the input grid whose OIHW weight is w (sub-pixel GEMMs: k4 s2 p1 = 4 GEMMs of 2x2 taps).
 */
/** The note on a transposed conv's launches (`Gpu.noting`). */
const CONV_T = { tag: 'convTranspose2d' } as const;

export function convTranspose2d(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  opts: { stride: number; padding: number },
): Tensor {
  const ctx = x.ctx;
  const inL = x.layout;
  if (!inL || !inL.isDense) throw new Error('convTranspose2d: x must be a dense feature map');
  const { stride, padding: pad } = opts;
  checkInt('convTranspose2d', 'stride', stride, 1);
  checkInt('convTranspose2d', 'padding', pad, 0);
  const cin = x.channels;
  const [wIn, cout, kh, kw] = w.shape as [number, number, number, number];
  if (w.shape.length !== 4 || wIn !== cin) {
    throw new Error(`convTranspose2d: weight [${w.shape}] must be [Cin=${cin}, Cout, kh, kw] (IOHW)`);
  }
  if (bias && bias.size !== cout) throw new Error(`convTranspose2d: bias has ${bias.size} values for ${cout} channels`);
  const outH = (inL.height - 1) * stride - 2 * pad + kh;
  const outW = (inL.width - 1) * stride - 2 * pad + kw;
  if (outH < 1 || outW < 1) throw new Error(`convTranspose2d: output would be ${outH}x${outW}`);
  const outL = SiteLayout.dense(inL.batch, outH, outW);
  // The adjoint conv: from our output grid (its input, cout channels) to our input grid (its
  // output, cin channels), OIHW weight [cin, cout, kh, kw] = w.
  const g: ConvGeometry = {
    batch: inL.batch, inH: outH, inW: outW, outH: inL.height, outW: inL.width, cin: cout, cout: cin, groups: 1,
    kh, kw, stride, pad, inRows: outL.rows, outRows: inL.rows, inL: null, outL: null,
    pointwise: kh === 1 && kw === 1 && stride === 1 && pad === 0,
  };

  const act = x.dtype;
  const y = markGrad(ctx.empty([outL.rows, cout], outL, act), x, w, bias);
  // Noted as a transposed conv, so a profile does not count it with the convs' input gradients.
  ctx.gpu.noting(CONV_T, () => inputGrad(ctx, g, act, x.buffer, w, bias?.buffer ?? null, y.buffer));

  if (y.requiresGrad) {
    ctx.tape.record('convTranspose2d', [x, w, bias] as const, y, (gy) => ctx.gpu.noting(CONV_T, () => {
      // dx = the adjoint conv's forward on gy (a plain strided conv with the same weight)
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty(x.shape, inL, act);
        forward(ctx, g, act, gy.buffer, w, null, dx.buffer);
      }
      // dw[ci, co, tap] = sum over our input rows m of x[m, ci] * gy[in(m, tap), co]: the
      // adjoint conv's weight gradient with gy as its input and x as its output gradient.
      const dw = w.requiresGrad ? weightGrad(ctx, g, act, gy.buffer, x.buffer) : null;
      const db = bias?.requiresGrad ? columnSums(ctx, gy.buffer, outL.rows, cout, act) : null;
      return [dx, dw, db];
    }));
  }
  return y;
}
