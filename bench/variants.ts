/**
 * `webspark bench variants`: webspark's conv kernel switches (src/ops/conv-plan.ts
 * `ConvConfig` flip and vec4) against each other at the `kernels` suite's conv shapes, interleaved
 * round by round so that every variant sees the same machine load: the A/B behind each
 * keep/reject in docs/performance.md. Per round and variant: forward, forward + input
 * gradient, forward + weight gradient, each a `timeGpu` median; the figure is the median
 * over rounds, gradients as (forward + gradient) minus forward like the other suites.
 */
import type { Context } from '../src/tensor/context.ts';
import { SiteLayout } from '../src/tensor/layout.ts';
import type { Tensor } from '../src/tensor/tensor.ts';
import { conv2d, convTranspose2d } from '../src/ops/conv2d.ts';
import type { ConvConfig } from '../src/ops/conv-plan.ts';
import { withConvConfig } from '../src/ops/conv-tuning.ts';
import { FULL, random, SMALL } from './kernels.ts';
import { median, record, timeGpu, type BenchRecord, type TimingOptions } from './harness.ts';

/** The settings compared: the defaults, each switch turned off alone, and both off. */
export const VARIANTS: Record<string, ConvConfig> = {
  default: {},
  'no vec4 gather': { vec4: false },
  'no flipped dx': { flip: false },
  'neither switch': { flip: false, vec4: false },
};


export async function benchVariants(ctx: Context, timing: TimingOptions = {}, rounds = 5): Promise<BenchRecord[]> {
  const s = ctx.gpu.adapter.isFallbackAdapter ? SMALL : FULL;
  const kernels: { name: string; shape: string; flops: number; x: Tensor; w: Tensor; f: (x: Tensor, w: Tensor) => Tensor }[] = [];
  {
    const { b, c, hw } = s.conv;
    kernels.push({
      name: 'conv3x3', shape: `B${b} ${c}->${c} ${hw}x${hw} k3`, flops: 2 * b * hw * hw * c * c * 9,
      x: random(ctx, [b * hw * hw, c], 3, SiteLayout.dense(b, hw, hw)), w: random(ctx, [c, c, 3, 3], 4),
      f: (x, w) => conv2d(x, w, null, { padding: 1 }),
    });
  }
  {
    const { b, cin, cout, hw } = s.convT;
    kernels.push({
      name: 'convT4x4', shape: `B${b} ${cin}->${cout} ${hw}->${2 * hw} k4s2`, flops: 2 * b * (2 * hw) ** 2 * cout * cin * 4,
      x: random(ctx, [b * hw * hw, cin], 5, SiteLayout.dense(b, hw, hw)), w: random(ctx, [cin, cout, 4, 4], 6),
      f: (x, w) => convTranspose2d(x, w, null, { stride: 2, padding: 1 }),
    });
  }
  const passes = [['forward', false, false], ['input-grad', true, false], ['weight-grad', false, true]] as const;
  // times[kernel][variant][pass] = per-round ms
  const times = kernels.map(() => Object.keys(VARIANTS).map(() => passes.map(() => [] as number[])));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [ki, k] of kernels.entries()) {
        for (const [vi, v] of Object.values(VARIANTS).entries()) {
          await withConvConfig(ctx.gpu, v, async () => {
            for (const [pi, [, gx, gw]] of passes.entries()) {
              k.x.requiresGrad = gx;
              k.w.requiresGrad = gw;
              const ms = await timeGpu(ctx, () => {
                const y = k.f(k.x, k.w);
                if (gx || gw) ctx.backward(y, y);
              }, { samples: 3, ...timing });
              times[ki]![vi]![pi]!.push(ms);
            }
          });
        }
      }
    }
  } finally {
    for (const k of kernels) k.x.requiresGrad = k.w.requiresGrad = false;
  }
  const out: BenchRecord[] = [];
  for (const [ki, k] of kernels.entries()) {
    for (const [vi, name] of Object.keys(VARIANTS).entries()) {
      const t = times[ki]![vi]!;
      const fwd = median(t[0]!);
      // Per-round differences, then the median: the gradient's own share of each round.
      const grad = (pi: number) => median(t[pi]!.map((ms, i) => ms - t[0]![i]!));
      out.push(record('variants', `${k.name} forward`, name, k.shape, fwd, k.flops));
      out.push(record('variants', `${k.name} input-grad`, name, k.shape, grad(1), k.flops));
      out.push(record('variants', `${k.name} weight-grad`, name, k.shape, grad(2), k.flops));
    }
  }
  return out;
}
