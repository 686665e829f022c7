/**
 * SparK's reconstruction loss and its visualisation (shaders/loss.wgsl), as in the official
 * spark.py: per-patch normalized targets from the unmasked image, mean squared error per
 * patch, averaged over the masked patches of the whole batch.
 *
 *   t = (x - mean_patch) / sqrt(var_unbiased_patch + 1e-6)
 *   L = sum_{masked patches} mean_patch((rec - t)^2) / (nMasked + 1e-8)
 *
 * Passes: patch_forward (one workgroup per patch: stats, and the error of masked patches),
 * loss_reduce (one workgroup: the scalar). Backward is one elementwise pass that reuses the
 * patch stats saved by the forward and reads the upstream gradient on the GPU.
 */
import type { Context } from '../tensor/context.ts';
import type { PatchMask } from '../tensor/layout.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { markGrad } from './common.ts';
import type { UniformValues } from '../gpu/gpu.ts';

const WG = 256;
const SHADER = 'loss';

interface Geometry {
  batch: number;
  height: number;
  width: number;
  p: number;
  ph: number;
  pw: number;
  patches: number;
  elements: number;
}

/** Checks that rec and image are dense [B*H*W, 3] maps on one grid that the mask tiles. */
function geometry(op: string, rec: Tensor, image: Tensor, mask: PatchMask): Geometry {
  const L = image.layout;
  if (!L || !L.isDense || !rec.layout || !rec.layout.isDense || !rec.layout.sameGrid(L)) {
    throw new Error(`${op}: rec and image must be dense feature maps on the same grid`);
  }
  if (rec.channels !== 3 || image.channels !== 3) {
    throw new Error(`${op}: expected 3 channels, got rec [${rec.shape}] and image [${image.shape}]`);
  }
  // The target is data, kept in f32 (precision.ts); only the prediction may be f16.
  if (image.dtype !== 'f32') throw new Error(`${op}: the image must be f32 (the loss target), got ${image.dtype}`);
  if (mask.batch !== L.batch) throw new Error(`${op}: mask batch ${mask.batch} vs image batch ${L.batch}`);
  const p = L.height / mask.h;
  if (!Number.isInteger(p) || p * mask.w !== L.width) {
    throw new Error(`${op}: a ${mask.h}x${mask.w} mask does not tile a ${L.height}x${L.width} image in square patches`);
  }
  return {
    batch: L.batch,
    height: L.height,
    width: L.width,
    p,
    ph: mask.h,
    pw: mask.w,
    patches: L.batch * mask.h * mask.w,
    elements: image.size,
  };
}

/** Params of loss.wgsl; `count` and `scale` depend on the pass. */
function pack(g: Geometry, count: number, scale: number): UniformValues {
  return { batch: g.batch, height: g.height, width: g.width, p: g.p, ph: g.ph, pw: g.pw, count, scale };
}

/** The mask's visible flags as an f32 tensor (1 = visible), owned by the current scope. */
function visibleFlags(ctx: Context, mask: PatchMask): Tensor {
  // Read when the write runs: a replayed step sees the mask assigned to it (PatchMask.assign).
  return ctx.fromArray(() => Float32Array.from(mask.visible, (v) => (v ? 1 : 0)), [mask.visible.length]);
}

/**
 * Per-patch statistics (and, with `withError`, per-patch errors) in one dispatch.
 * stats: [patches, 4] = (shift, mean of x - shift, std, 0); see the shader on why the shift.
 */
function patchForward(g: Geometry, rec: Tensor, image: Tensor, vis: Tensor, withError: boolean) {
  const ctx = image.ctx;
  const gpu = ctx.gpu;
  const stats = ctx.empty([g.patches, 4]);
  const err = withError ? ctx.empty([g.patches]) : null;
  // rec and err are read only WITH_ERROR.
  const bufs = { x: image.buffer, vis: vis.buffer, stats: stats.buffer, rec: err ? rec.buffer : null, err: err?.buffer ?? null };
  const pipe = gpu.pipeline(SHADER, 'patch_forward', { WITH_ERROR: withError }, { act: rec.dtype });
  gpu.dispatch(pipe, bufs, pack(g, g.patches, 0), gpu.grid(g.patches));
  return { stats, err };
}

/** Returns a [1] tensor (op 'maskedPatchLoss'); gradient flows to `rec` only (the target is data). */
export function maskedPatchLoss(rec: Tensor, image: Tensor, mask: PatchMask): Tensor {
  const g = geometry('maskedPatchLoss', rec, image, mask);
  const ctx = rec.ctx;
  const gpu = ctx.gpu;
  const nMasked = g.patches - mask.visibleCount;
  // The official divisor; with no masked patch the sum is 0 and so is the loss (0 / 1e-8).
  const invDenom = 1 / (nMasked + 1e-8);
  const vis = visibleFlags(ctx, mask);
  const { stats, err } = patchForward(g, rec, image, vis, true);
  const y = markGrad(ctx.empty([1]), rec);
  // The loss is f32 whatever rec's dtype (precision.ts).
  gpu.dispatch(gpu.pipeline(SHADER, 'loss_reduce', {}, { act: rec.dtype, out: 'f32' }), { err: err!.buffer, y: y.buffer }, pack(g, g.patches, invDenom), [1]);

  if (y.requiresGrad) {
    ctx.tape.record('maskedPatchLoss', [rec] as const, y, (gy) => {
      const drec = ctx.empty(rec.shape, rec.layout, rec.dtype);
      // d/d rec of mean((rec - t)^2) / denom = 2 (rec - t) / (p*p*3) / denom, times gy.
      const scale = 2 / (g.p * g.p * 3) * invDenom;
      gpu.dispatch(
        gpu.pipeline(SHADER, 'loss_backward', {}, { act: rec.dtype }),
        { x: image.buffer, rec: rec.buffer, vis: vis.buffer, gy: gy.buffer, stats: stats.buffer, y: drec.buffer },
        pack(g, g.elements, scale),
        gpu.grid(Math.ceil(g.elements / WG)),
      );
      return [drec];
    });
  }
  return y;
}

/**
 * Not recorded. The official visualisation: de-normalize the prediction with the TRUE patch stats
 * (rec*std + mean) and take input pixels at visible patches: returns { masked, reconstruction, composite }
 * as dense [B*H*W, 3] tensors in the same normalized space (masked = image * visible; reconstruction =
 * de-normalized rec everywhere; composite = where(visible, image, reconstruction)).
 */
export function reconstructionImages(
  rec: Tensor,
  image: Tensor,
  mask: PatchMask,
): { masked: Tensor; reconstruction: Tensor; composite: Tensor } {
  const g = geometry('reconstructionImages', rec, image, mask);
  const ctx = rec.ctx;
  const gpu = ctx.gpu;
  const vis = visibleFlags(ctx, mask);
  const { stats } = patchForward(g, rec, image, vis, false);
  const make = (output: number): Tensor => {
    const out = ctx.empty(image.shape, image.layout);
    gpu.dispatch(
      gpu.pipeline(SHADER, 'compose', { OUTPUT: output }, { act: rec.dtype, out: 'f32' }),
      { x: image.buffer, rec: rec.buffer, vis: vis.buffer, stats: stats.buffer, y: out.buffer },
      pack(g, g.elements, 0),
      gpu.grid(Math.ceil(g.elements / WG)),
    );
    return out;
  };
  return { masked: make(0), reconstruction: make(1), composite: make(2) };
}

/**
 * Not recorded. The per-patch terms the loss is made of, as the loss pass computes them, for
 * checks against the official code's `mean`, `var` and `l2_loss`. Patch order: b, row, column.
 * `stats` [patches, 4]: (shift, mean of x - shift, std, 0) of each target patch (the shader
 * says why the shift; the mean is shift + the second value). `error` [patches]: the mean
 * squared error of each MASKED patch, 0 for visible ones (the loss pass skips them).
 */
export function patchLossTerms(rec: Tensor, image: Tensor, mask: PatchMask): { stats: Tensor; error: Tensor } {
  const g = geometry('patchLossTerms', rec, image, mask);
  const { stats, err } = patchForward(g, rec, image, visibleFlags(rec.ctx, mask), true);
  return { stats, error: err! };
}
