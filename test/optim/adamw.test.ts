/**
 * AdamW (the `kind: 'adamw'` branch of the GPU optimizer) against a float64 reference written
 * here with PyTorch's AdamW semantics, after the official global gradient-norm clip:
 *
 *   g  = grad / max(1, |all grads| / 5)
 *   m  = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
 *   p -= lr * ( (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps) + wd * p )
 *
 * and no trust ratio. Which parameters decay is written out per parameter below, by the
 * official rule (pretrain/utils/lr_control.py get_param_groups: no decay for 1-D shapes, names
 * ending in `.bias`, and names containing `mask_token`, `gamma`, `cls_token`, `pos_embed`),
 * not taken from the optimizer under test. Three steps with changing lr / wd; the gradients of
 * step 2 are large enough to be clipped.
 *
 * Tolerance: the GPU works in float32; one step moves a parameter by ~lr (1e-2), so the
 * float32 rounding of the update (~1e-7 relative to it) and of the parameter itself (~6e-8
 * relative) keep the error below 1e-6 relative; we allow 1e-5 relative + 1e-6 absolute.
 */
import { describe, expect, it } from 'vitest';
import { Lamb } from '../../src/optim/lamb.ts';
import type { Parameter } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { Rng, f32 } from '../helpers/random.ts';

interface RefParam {
  name: string;
  shape: number[];
  decays: boolean;
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** One AdamW step over all parameters, float64. Returns the global gradient norm before clipping. */
function adamwStep(ps: RefParam[], grads: Float64Array[], t: number, lr: number, wd: number, b1: number, b2: number, eps: number, maxNorm: number): number {
  let sq = 0;
  for (const g of grads) for (const x of g) sq += x * x;
  const norm = Math.sqrt(sq);
  const clip = Math.max(1, norm / maxNorm);
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  ps.forEach((q, k) => {
    const decay = q.decays ? wd : 0;
    for (let i = 0; i < q.p.length; i++) {
      const g = grads[k]![i]! / clip;
      q.m[i] = b1 * q.m[i]! + (1 - b1) * g;
      q.v[i] = b2 * q.v[i]! + (1 - b2) * g * g;
      const update = q.m[i]! / bc1 / (Math.sqrt(q.v[i]!) / Math.sqrt(bc2) + eps) + decay * q.p[i]!;
      q.p[i] = q.p[i]! - lr * update;
    }
  });
  return norm;
}

describe('AdamW', () => {
  const getCtx = useContext();

  it('matches a float64 PyTorch-semantics AdamW over three steps (clipping, no-decay groups)', async () => {
    const ctx = getCtx();
    const rng = new Rng(5);
    // Awkward sizes (not multiples of 4 or of the 256-thread workgroup), a 1-D weight, a bias
    // and a mask token, which all take no weight decay.
    // [name, shape, takes weight decay]
    const specs: [string, number[], boolean][] = [
      ['conv.weight', [7, 3, 3, 3], true],
      ['fc.weight', [5, 61], true],
      ['fc.bias', [5], false],
      ['bn.weight', [7], false],
      ['mask_token', [1, 7, 1, 1], false],
      ['stages.0.gamma', [2, 3], false],
    ];
    const ref: RefParam[] = specs.map(([name, shape, decays]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return { name, shape, decays, p: f32(rng.array(n)), m: new Float64Array(n), v: new Float64Array(n) };
    });
    const params: [string, Parameter][] = ref.map((q) => [q.name, ctx.parameter(q.name, q.shape, Float32Array.from(q.p))]);
    const b1 = 0.9;
    const b2 = 0.999;
    const eps = 1e-6;
    const opt = new Lamb(ctx, params, { kind: 'adamw', beta2: b2 });
    const schedule = [
      { lr: 1e-2, wd: 0.05, gradScale: 0.1 },
      { lr: 2e-2, wd: 0.1, gradScale: 3 }, // global norm ~ 3 * sqrt(400/3) ≈ 35 > 5: clipped
      { lr: 5e-3, wd: 0.2, gradScale: 0.5 },
    ];
    let clipped = false;
    for (const [k, s] of schedule.entries()) {
      const grads = ref.map((q) => f32(rng.array(q.p.length, -s.gradScale, s.gradScale)));
      params.forEach(([, p], j) => {
        p.grad ??= ctx.persistent(p.shape);
        ctx.gpu.write(p.grad.buffer, Float32Array.from(grads[j]!));
      });
      opt.step(s.lr, s.wd);
      const norm = adamwStep(ref, grads, k + 1, s.lr, s.wd, b1, b2, eps, 5);
      clipped ||= norm > 5;
      const status = await opt.status();
      expect(status.skipped).toBe(false);
      expect(status.step).toBe(k + 1);
      expect(Math.abs(status.gradNorm - norm) / norm).toBeLessThan(1e-5);
      for (const [j, [name, p]] of params.entries()) {
        expectClose(await p.read(), ref[j]!.p, { atol: 1e-6, rtol: 1e-5 }, `step ${k + 1} ${name}`);
      }
      const state = opt.stateTensors();
      for (const q of ref) {
        expectClose(await state.get(`${q.name}.exp_avg`)!.read(), q.m, { atol: 1e-9, rtol: 1e-4 }, `step ${k + 1} ${q.name} exp_avg`);
        expectClose(await state.get(`${q.name}.exp_avg_sq`)!.read(), q.v, { atol: 1e-12, rtol: 1e-4 }, `step ${k + 1} ${q.name} exp_avg_sq`);
      }
    }
    expect(clipped).toBe(true);
    ctx.dispose();
  });
});
