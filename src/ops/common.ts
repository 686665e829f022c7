/** Small helpers every op module uses. */
import type { SiteLayout } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** True when an op on `inputs` must be recorded: grad mode is on and some input needs a gradient. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  const first = inputs.find((t) => t);
  if (!first || !first.ctx.gradEnabled) return false;
  return inputs.some((t) => t?.requiresGrad);
}

/** Marks `y` as requiring a gradient if any input does (call before recording). */
export function markGrad<T extends Tensor>(y: T, ...inputs: (Tensor | null | undefined)[]): T {
  y.requiresGrad = needsGrad(...inputs);
  return y;
}

/** x's site layout; an error naming `op` when x is not a feature map. */
export function featureLayout(op: string, x: Tensor): SiteLayout {
  if (!x.layout) throw new Error(`${op}: x must be a feature map (a tensor with a SiteLayout)`);
  return x.layout;
}

/**
 * The output grid of a kh x kw window moved with `stride` over feature map x padded by `pad`
 * (conv2d, depthwiseConv2d, maxPool2d): out = floor((in + 2 pad - k) / stride) + 1 a side, on
 * `given`, which must be a grid of that size, batch and kind (dense or sparse), or else on x's
 * layout resized (a patch mask at the coarser grid).
 */
export function windowOutput(
  op: string, x: Tensor, kh: number, kw: number, stride: number, pad: number, given?: SiteLayout,
): { inL: SiteLayout; outL: SiteLayout; outH: number; outW: number } {
  const inL = featureLayout(op, x);
  const outH = Math.floor((inL.height + 2 * pad - kh) / stride) + 1;
  const outW = Math.floor((inL.width + 2 * pad - kw) / stride) + 1;
  if (outH < 1 || outW < 1) throw new Error(`${op}: a ${inL.height}x${inL.width} input is smaller than the ${kh}x${kw} window`);
  const outL = given ?? inL.resized(outH, outW);
  if (outL.batch !== inL.batch || outL.height !== outH || outL.width !== outW || outL.isDense !== inL.isDense) {
    throw new Error(`${op}: the output layout must be a ${inL.isDense ? 'dense' : 'sparse'} ${inL.batch}x${outH}x${outW} grid`);
  }
  return { inL, outL, outH, outW };
}

/** A square K x K window over C channels from layout inL to outL (depthwise conv, max pool). */
export interface WindowGeometry {
  C: number;
  K: number;
  stride: number;
  pad: number;
  inL: SiteLayout;
  outL: SiteLayout;
}

/** The uniform fields depthwise.wgsl and pool.wgsl share, for a pass walking `rows` rows. */
export function windowParams(g: WindowGeometry, rows: number): Record<string, number> {
  const { C, K, stride, pad } = g;
  return { rows, C, K, stride, pad, in_h: g.inL.height, in_w: g.inL.width, out_h: g.outL.height, out_w: g.outL.width };
}
