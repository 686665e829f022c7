/**
 * Per-channel and per-image scaling (shaders/channel.wgsl): ConvNeXt's layer scale and
 * stochastic depth. Both are elementwise; dgamma is a split reduction over rows. Outputs keep
 * x's dtype (the activation dtype); gamma, the drop factors and dgamma are f32.
 */
import type { DType } from '../tensor/precision.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import { chunkPlan, sumChunks } from './chunks.ts';
import { markGrad } from './common.ts';

function elementwisePass(
  ctx: Context,
  entry: 'channel_scale' | 'drop_path',
  n: number,
  C: number,
  plane: number,
  bufs: Record<string, GPUBuffer | null>,
  act: DType,
  sparse = false,
): void {
  const gpu = ctx.gpu;
  const p = gpu.pipeline('channel', entry, { SPARSE: sparse }, { act });
  gpu.dispatch(p, bufs, { n, C, chunk_rows: 0, plane }, gpu.grid(Math.ceil(n / 256)));
}

/** x * gamma[c] for x [..., C]; not recorded. */
function scaleChannels(x: Tensor, gamma: Tensor): Tensor {
  const y = x.ctx.empty(x.shape, x.layout, x.dtype);
  elementwisePass(x.ctx, 'channel_scale', x.size, gamma.size, 1, { x: x.buffer, gamma: gamma.buffer, y: y.buffer }, x.dtype);
  return y;
}

/** Per-channel scale y = x * gamma[c] (ConvNeXt layer scale); x is [..., C], gamma [C]. */
export function channelScale(x: Tensor, gamma: Tensor): Tensor {
  const ctx = x.ctx;
  const C = x.channels;
  if (gamma.size !== C) throw new Error(`channelScale: gamma has ${gamma.size} values for ${C} channels`);
  const y = markGrad(scaleChannels(x, gamma), x, gamma);
  if (y.requiresGrad) {
    ctx.tape.record('channelScale', [x, gamma] as const, y, (gy) => {
      // dx = gy * gamma; dgamma[c] = sum over rows of gy[r, c] * x[r, c].
      let dgamma: Tensor | null = null;
      if (gamma.requiresGrad) {
        const rows = x.size / C;
        const plan = chunkPlan(rows);
        const partial = ctx.empty([plan.chunks, C]);
        const gpu = ctx.gpu;
        const p = gpu.pipeline('channel', 'channel_scale_partial', {}, { act: x.dtype, out: 'f32' });
        const packed = { n: rows, C, chunk_rows: plan.chunkRows, plane: 0 };
        gpu.dispatch(p, { x: x.buffer, gy: gy.buffer, y: partial.buffer }, packed, [Math.ceil(C / 64), plan.chunks]);
        dgamma = sumChunks(ctx, partial, plan.chunks, C);
      }
      return [x.requiresGrad ? scaleChannels(gy, gamma) : null, dgamma];
    });
  }
  return y;
}

/**
 * Stochastic depth per sample: the rows of image b are multiplied by keep[b] / (1 - prob), as
 * timm's drop_path (keep[b] in {0, 1}, drawn by the caller from a seeded CPU RNG so runs are
 * reproducible). The image of a row comes from the layout; a tensor without a layout is split
 * into B equal blocks along its first dimension. `keep` may be a function that draws the
 * flags: it is called when the write runs (once now, or on every replay of a recorded step).
 */
export function dropPath(x: Tensor, keep: Uint8Array | (() => Uint8Array), prob: number): Tensor {
  const ctx = x.ctx;
  const layout = x.layout;
  const B = layout ? layout.batch : typeof keep === 'function' ? 0 : keep.length;
  if (!layout && typeof keep === 'function') throw new Error('dropPath: flags drawn by a function need a tensor with a layout (for the batch size)');
  if (typeof keep !== 'function' && keep.length !== B) throw new Error(`dropPath: ${keep.length} keep flags for a batch of ${B}`);
  if (!(prob >= 0 && prob <= 1)) throw new Error(`dropPath: probability ${prob} outside [0, 1]`);
  if (!layout && x.shape[0]! % B !== 0) throw new Error(`dropPath: first dimension ${x.shape[0]} is not a multiple of ${B}`);
  // timm: random_tensor.div_(keep_prob) unless keep_prob is 0, in f32.
  const keepProb = Math.fround(1 - prob);
  const factorsOf = (flags: Uint8Array): Float32Array => {
    if (flags.length !== B) throw new Error(`dropPath: ${flags.length} keep flags for a batch of ${B}`);
    const factors = new Float32Array(B);
    for (let b = 0; b < B; b++) factors[b] = flags[b] ? (keepProb > 0 ? 1 / keepProb : 1) : 0;
    return factors;
  };
  const factor = ctx.fromArray(typeof keep === 'function' ? () => factorsOf(keep()) : factorsOf(keep), [B]);
  // With a layout: element -> row (C per row) -> site -> image. Without: blocks of size/B.
  const C = layout ? x.channels : 1;
  const plane = layout ? layout.height * layout.width : x.size / B;
  const sites = layout ? ctx.layoutBuffers(layout).sites : null;
  const apply = (t: Tensor): Tensor => {
    const y = ctx.empty(t.shape, t.layout, t.dtype);
    const bufs = { x: t.buffer, factor: factor.buffer, sites, y: y.buffer };
    elementwisePass(ctx, 'drop_path', t.size, C, plane, bufs, t.dtype, sites !== null);
    return y;
  };
  const y = markGrad(apply(x), x);
  if (y.requiresGrad) ctx.tape.record('dropPath', [x] as const, y, (gy) => [apply(gy)]);
  return y;
}
