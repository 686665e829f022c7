/**
 * Launcher of shaders/conv-direct.wgsl: the input gradient of a dense conv (= the transposed
 * conv's forward) without a GEMM, one invocation per input pixel and 4 channels. Chosen only
 * by the auto-tune (`ConvConfig.direct`, a `dx` candidate); see the shader's header for why
 * it exists. `directApplies` is the launcher's rule: shapes it refuses run the GEMM.
 */
import type { Context } from '../tensor/context.ts';
import type { ConvGeometry } from './conv-geometry.ts';

/** Invocations per workgroup (the shader's WG). */
const WG = 64;

/**
 * Dense, non-pointwise geometries only: a sparse input gradient walks active rows through
 * site tables the direct kernel does not read, and a pointwise one is a plain matmul whose
 * rows need not form a grid.
 */
export function directApplies(g: ConvGeometry): boolean {
  const sparse = (g.inL !== null && !g.inL.isDense) || (g.outL !== null && !g.outL.isDense);
  return !sparse && !g.pointwise;
}

/**
 * dx[inRows, cin] = the input gradient of conv `g` applied to dy (+ bias), from the OHWI
 * packed weight `wp` (conv2d-gemm.ts packWeights), or the OIHW weight itself if `packed` is
 * false; `px` pixels per invocation (1, 2 or 4).
 */
export function directInputGrad(
  ctx: Context,
  g: ConvGeometry,
  dy: GPUBuffer,
  wp: GPUBuffer,
  bias: GPUBuffer | null,
  dx: GPUBuffer,
  px: 1 | 2 | 4 = 1,
  packed = true,
): void {
  if (px !== 1 && px !== 2 && px !== 4) throw new Error(`conv2d: the direct kernel takes 1, 2 or 4 pixels per invocation (got ${px})`);
  if (!directApplies(g)) throw new Error('conv2d: the direct input-gradient kernel takes dense, non-1x1 convs only; use the GEMM');
  const gpu = ctx.gpu;
  const cinG = g.cin / g.groups;
  const coutG = g.cout / g.groups;
  const vec4 = cinG % 4 === 0 && coutG % 4 === 0;
  // Slots of px pixels of one sub-pixel column class along x (the shader's header).
  const xslots = Math.ceil(Math.ceil(g.inW / g.stride) / px);
  const invocations = g.batch * g.inH * g.stride * xslots * g.groups * Math.ceil(cinG / 4);
  // The vec4 views are read only where VEC4 (and, for the weight, PACKED_W) is on, bias
  // only where HAS_BIAS is: null otherwise.
  const bufs = { gy: dy, gy4: vec4 ? dy : null, wp, wp4: vec4 && packed ? wp : null, bias, dst: dx };
  const p = gpu.pipeline('conv-direct', 'direct_input_grad', { HAS_BIAS: bias !== null, VEC4: vec4, WG, PX: px, PACKED_W: packed });
  const u = {
    batch: g.batch, in_h: g.inH, in_w: g.inW, out_h: g.outH, out_w: g.outW,
    cin: g.cin, cout: g.cout, cin_g: cinG, cout_g: coutG,
    kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad, groups: g.groups,
  };
  gpu.dispatch(p, bufs, u, gpu.grid(Math.ceil(invocations / WG)));
}
