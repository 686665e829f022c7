/**
 * Global average pooling (shaders/global-pool.wgsl): a dense feature map [B*H*W, C] to one
 * C-vector per image [B, C], what a classifier puts between the encoder's last stage and its
 * Linear head. Backward spreads each image's gradient evenly over its H*W sites.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { markGrad } from './common.ts';

const WG = 256;

/** Mean over each image's sites of a dense map x [B*H*W, C] -> [B, C] (no layout). */
export function globalAvgPool(x: Tensor): Tensor {
  const ctx = x.ctx;
  const L = x.layout;
  if (!L || !L.isDense) throw new Error(`globalAvgPool: expects a dense feature map, got [${x.shape}]${L ? ' (sparse)' : ' without a layout'}`);
  const B = L.batch;
  const S = L.height * L.width;
  const C = x.channels;
  const gpu = ctx.gpu;
  // Stored as x is (the activation dtype); the sum runs in f32.
  const act = x.dtype;
  const y = markGrad(ctx.empty([B, C], null, act), x);
  gpu.dispatch(gpu.pipeline('global-pool', 'pool_forward', {}, { act }), { x: x.buffer, y: y.buffer }, { n: B * C, C, S }, gpu.grid(Math.ceil((B * C) / WG)));
  if (y.requiresGrad) {
    ctx.tape.record('globalAvgPool', [x] as const, y, (gy) => {
      const gx = ctx.empty(x.shape, L, act);
      const u = { n: x.size, C, S };
      gpu.dispatch(gpu.pipeline('global-pool', 'pool_backward', {}, { act }), { gy: gy.buffer, gx: gx.buffer }, u, gpu.grid(Math.ceil(x.size / WG)));
      return [gx];
    });
  }
  return y;
}
