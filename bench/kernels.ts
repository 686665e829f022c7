/**
 * `webspark bench kernels`: the engine's own kernels at SparK-like shapes.
 * GEMM, dense 3x3 conv forward / input gradient / weight gradient at a decoder-like shape,
 * transposed conv 4x4/2, and sparse 3x3 conv at 40 % active against the same shape fully
 * active. On a software adapter every shape is scaled down (stated in the shape column).
 */
import type { Context } from '../src/tensor/context.ts';
import { PatchMask, SiteLayout } from '../src/tensor/layout.ts';
import type { Tensor } from '../src/tensor/tensor.ts';
import { conv2d, convTranspose2d } from '../src/ops/conv2d.ts';
import { linear } from '../src/ops/matmul.ts';
import { record, timeGpu, type BenchRecord, type TimingOptions } from './harness.ts';

export interface Shapes {
  gemm: number[];
  conv: { b: number; c: number; hw: number };
  convT: { b: number; cin: number; cout: number; hw: number };
  sparse: { b: number; c: number; hw: number; patches: number; keep: number };
}

/** Full shapes: a decoder block of SparK ResNet-50 at 224 (56x56x192, batch 8). */
export const FULL: Shapes = {
  gemm: [1024, 2048],
  conv: { b: 8, c: 192, hw: 56 },
  convT: { b: 8, cin: 384, cout: 384, hw: 28 },
  sparse: { b: 8, c: 256, hw: 56, patches: 7, keep: 20 },
};

/** Software adapters (SwiftShader on a CPU) run ~1000x slower: scale down. */
export const SMALL: Shapes = {
  gemm: [256, 512],
  conv: { b: 1, c: 32, hw: 28 },
  convT: { b: 1, cin: 32, cout: 32, hw: 14 },
  sparse: { b: 2, c: 32, hw: 28, patches: 7, keep: 20 },
};

/** A seeded pseudo-random tensor in [-1, 1) (the suites' inputs; no Rng state to share). */
export function random(ctx: Context, shape: number[], seed: number, layout: SiteLayout | null = null): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return ctx.fromArray(data, shape, layout);
}

/** Times forward, and each gradient alone (only that input requires a gradient). */
async function convPasses(
  ctx: Context,
  out: BenchRecord[],
  name: string,
  shape: string,
  flops: number,
  x: Tensor,
  w: Tensor,
  forward: (x: Tensor, w: Tensor) => Tensor,
  timing: TimingOptions,
): Promise<void> {
  const pass = async (label: string, gradX: boolean, gradW: boolean) => {
    x.requiresGrad = gradX;
    w.requiresGrad = gradW;
    const ms = await timeGpu(
      ctx,
      () => {
        const y = forward(x, w);
        if (gradX || gradW) ctx.backward(y, y);
      },
      timing,
    );
    return ms;
  };
  const fwd = await pass('forward', false, false);
  out.push(record('kernels', `${name} forward`, 'webspark', shape, fwd, flops));
  const dx = (await pass('input-grad', true, false)) - fwd;
  out.push(record('kernels', `${name} input-grad`, 'webspark', shape, dx, flops));
  const dw = (await pass('weight-grad', false, true)) - fwd;
  out.push(record('kernels', `${name} weight-grad`, 'webspark', shape, dw, flops));
  x.requiresGrad = false;
  w.requiresGrad = false;
}

export async function benchKernels(ctx: Context, timing: TimingOptions = {}): Promise<BenchRecord[]> {
  const s = ctx.gpu.adapter.isFallbackAdapter ? SMALL : FULL;
  const out: BenchRecord[] = [];

  for (const n of s.gemm) {
    const a = random(ctx, [n, n], 1);
    const b = random(ctx, [n, n], 2);
    const ms = await timeGpu(ctx, () => void linear(a, b, null), timing);
    out.push(record('kernels', 'matmul', 'webspark', `${n}x${n}x${n}`, ms, 2 * n ** 3));
  }

  {
    const { b, c, hw } = s.conv;
    const x = random(ctx, [b * hw * hw, c], 3, SiteLayout.dense(b, hw, hw));
    const w = random(ctx, [c, c, 3, 3], 4);
    const flops = 2 * b * hw * hw * c * c * 9;
    const shape = `B${b} ${c}->${c} ${hw}x${hw} k3`;
    await convPasses(ctx, out, 'conv3x3', shape, flops, x, w, (x, w) => conv2d(x, w, null, { padding: 1 }), timing);
  }

  {
    const { b, cin, cout, hw } = s.convT;
    const x = random(ctx, [b * hw * hw, cin], 5, SiteLayout.dense(b, hw, hw));
    const w = random(ctx, [cin, cout, 4, 4], 6);
    // Each output pixel sums 2x2 taps of cin channels.
    const flops = 2 * b * (2 * hw) ** 2 * cout * cin * 4;
    const shape = `B${b} ${cin}->${cout} ${hw}->${2 * hw} k4s2`;
    const fwd = (x: Tensor, w: Tensor) => convTranspose2d(x, w, null, { stride: 2, padding: 1 });
    await convPasses(ctx, out, 'convT4x4', shape, flops, x, w, fwd, timing);
  }

  {
    const { b, c, hw, patches, keep } = s.sparse;
    const visible = new Uint8Array(b * patches * patches);
    for (let i = 0; i < b; i++) {
      // A fixed spread of `keep` visible patches per image (40 % of 49 when keep = 20).
      for (let k = 0; k < keep; k++) visible[i * patches * patches + ((k * 5 + i) % (patches * patches))] = 1;
    }
    const sparse = new PatchMask(b, patches, patches, visible).layoutAt(hw, hw);
    const dense = SiteLayout.dense(b, hw, hw);
    const w = random(ctx, [c, c, 3, 3], 7);
    for (const [impl, layout] of [
      ['sparse 40%', sparse],
      ['dense 100%', dense],
    ] as const) {
      const x = random(ctx, [layout.rows, c], 8, layout);
      // Upload the layout tables once, in this outer scope: each timed run opens its own
      // scope, which would otherwise re-upload them every time.
      ctx.layoutBuffers(layout);
      const flops = 2 * layout.rows * c * c * 9;
      const ms = await timeGpu(ctx, () => void conv2d(x, w, null, { padding: 1 }), timing);
      out.push(record('kernels', 'submanifold conv3x3', impl, `B${b} ${c}->${c} ${hw}x${hw}`, ms, flops));
    }
  }
  return out;
}
