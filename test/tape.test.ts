/**
 * The tape, checked end to end: ops composed mid-graph (scaled, summed, a tensor used twice,
 * a parameter used twice) and the gradients compared with finite differences of the same
 * function in float64. A rule that ignored its upstream gradient, or a missed accumulation,
 * would fail here.
 */
import { describe, expect, it } from 'vitest';
import { elementwise as ew } from '../src/ops/elementwise.ts';
import { useContext } from './helpers/gpu.ts';
import { Rng, f32 } from './helpers/random.ts';
import { expectClose } from './helpers/check.ts';
import { numericGrad } from './helpers/finite-diff.ts';
import * as ref from './reference/elementwise.ts';

// L(x, w) = sum( 3 * gelu(x*w) + relu6(x + x*w) * x ) + 0.5 * sum(w*w)
function lossF64(x: Float64Array, w: Float64Array): number {
  let l = 0;
  for (let i = 0; i < x.length; i++) {
    const xw = x[i]! * w[i]!;
    l += 3 * ref.gelu(xw) + ref.relu6(x[i]! + xw) * x[i]! + 0.5 * w[i]! * w[i]!;
  }
  return l;
}

describe('tape', () => {
  const getCtx = useContext();

  it('composite graph gradients match finite differences', async () => {
    const ctx = getCtx();
    const rng = new Rng(11);
    const n = 33;
    const xs = f32(rng.array(n, -2, 2));
    const ws = f32(rng.array(n, -2, 2));
    const x = ctx.fromArray(xs, [n]);
    x.requiresGrad = true;
    const w = ctx.parameter('w', [n], ws);
    const loss = ctx.tidy(() => {
      const xw = ew.mul(x, w);
      const a = ew.scale(ew.gelu(xw), 3);
      const b = ew.mul(ew.relu6(ew.add(x, xw)), x);
      const c = ew.scale(ew.mul(w, w), 0.5);
      const l = ew.sum(ew.add(ew.add(a, b), c));
      const grads = ctx.backward(l);
      return { l, gx: grads.get(x.id)! };
    });
    const [l, gx, gw] = await Promise.all([loss.l.read(), loss.gx.read(), w.grad!.read()]);
    expect(l[0]).toBeCloseTo(lossF64(xs, ws), 3);
    const gxRef = numericGrad((p) => lossF64(p, ws), xs);
    const gwRef = numericGrad((p) => lossF64(xs, p), ws);
    expectClose(gx, gxRef, { atol: 1e-4, rtol: 1e-4 }, 'dL/dx');
    expectClose(gw, gwRef, { atol: 1e-4, rtol: 1e-4 }, 'dL/dw');
    ctx.dispose();
  });

  it('parameter gradients accumulate across backward calls until zeroed', async () => {
    const ctx = getCtx();
    const w = ctx.parameter('w', [4], [1, 2, 3, 4]);
    for (let k = 0; k < 3; k++) ctx.tidy(() => void ctx.backward(ew.sum(ew.scale(w, 2))));
    expectClose(await w.grad!.read(), [6, 6, 6, 6], { atol: 0, rtol: 0 }, 'accumulated grad');
    ctx.zeroGrad([w]);
    expectClose(await w.grad!.read(), [0, 0, 0, 0], { atol: 0, rtol: 0 }, 'zeroed grad');
    ctx.dispose();
  });

  it('noGrad records nothing and tidy releases intermediates', async () => {
    const ctx = getCtx();
    const w = ctx.parameter('w', [8]);
    const live0 = ctx.gpu.pool.liveBytes;
    const kept = ctx.tidy(() => {
      const y = ctx.noGrad(() => ew.relu(ew.scale(w, 2)));
      expect(y.requiresGrad).toBe(false);
      expect(ctx.tape.length).toBe(0);
      ew.add(y, y); // dropped at the end of the scope
      return y;
    });
    expect(kept.released).toBe(false);
    expect(ctx.gpu.pool.liveBytes).toBe(live0 + kept.buffer.size);
    ctx.dispose();
    expect(() => kept.buffer).toThrow(/after its scope ended/);
  });
});
