/**
 * The classifier's head ops: global average pooling and label-smoothed softmax cross-entropy.
 * The float64 references (test/reference/classifier.ts) are first checked against finite
 * differences and against the smoothing identity; then the GPU forward and backward against
 * them on awkward shapes (a batch of 1, K not a multiple of 4, a K above 256, large logits).
 *
 * Tolerances: cross-entropy runs in f32 with the row maximum subtracted, so exp() stays in
 * [0, 1] and the log-sum-exp carries ~K ulps of relative error (K <= 1000: < 1e-4 relative
 * of values ~ 1-10); we allow 1e-5 absolute + 1e-4 relative on the loss and 1e-6 + 1e-4 on
 * the gradients (entries ~1/B). Pooling sums S <= 49 f32 values: 1e-6 + 1e-5 relative.
 */
import { describe, expect, it } from 'vitest';
import { crossEntropy } from '../../src/ops/cross-entropy.ts';
import { globalAvgPool } from '../../src/ops/global-pool.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/classifier.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

function labelsFor(rng: Rng, B: number, K: number): Int32Array {
  return Int32Array.from({ length: B }, () => rng.int(K));
}

describe('float64 references', () => {
  it('cross-entropy gradient matches finite differences, with and without smoothing', () => {
    const rng = new Rng(1);
    for (const eps of [0, 0.1, 0.5]) {
      const B = 3;
      const K = 7;
      const z = rng.array(B * K, -4, 4);
      const y = labelsFor(rng, B, K);
      expectGradientMatches((v) => ref.crossEntropyForward(v, y, K, eps), z, ref.crossEntropyBackward(z, y, K, eps), `eps ${eps}`);
    }
  });

  it('smoothing eps is (1 - eps) * CE + eps * mean over classes of -log softmax', () => {
    const rng = new Rng(2);
    const B = 4;
    const K = 5;
    const z = rng.array(B * K, -3, 3);
    const y = labelsFor(rng, B, K);
    let uniform = 0;
    for (let c = 0; c < K; c++) uniform += ref.crossEntropyForward(z, new Int32Array(B).fill(c), K, 0) / K;
    const eps = 0.2;
    expect(ref.crossEntropyForward(z, y, K, eps)).toBeCloseTo((1 - eps) * ref.crossEntropyForward(z, y, K, 0) + eps * uniform, 12);
  });

  it('pooling gradient matches finite differences', () => {
    const rng = new Rng(3);
    const [B, S, C] = [2, 5, 3];
    const x = rng.array(B * S * C);
    const w = projection(B * C);
    expectGradientMatches((v) => dot(ref.avgPoolForward(v, B, S, C), w), x, ref.avgPoolBackward(w, B, S, C), 'avg pool');
  });
});

describe('crossEntropy on the GPU', () => {
  const getCtx = useContext();
  const cases = [
    { B: 1, K: 2, eps: 0, scale: 3 },
    { B: 5, K: 7, eps: 0.1, scale: 3 },
    { B: 33, K: 10, eps: 0.1, scale: 3 },
    { B: 300, K: 13, eps: 0.3, scale: 2 }, // more rows than ce_mean's 256 threads
    { B: 4, K: 1000, eps: 0.1, scale: 5 },
    { B: 6, K: 9, eps: 0, scale: 60 }, // large logits: exp() would overflow without the max shift
  ];
  for (const c of cases) {
    it(`B ${c.B}, K ${c.K}, eps ${c.eps}, logits in +-${c.scale}: loss and dL/dz (through a downstream scale)`, async () => {
      const ctx = getCtx();
      const rng = new Rng(c.B * 31 + c.K);
      const z = f32(rng.array(c.B * c.K, -c.scale, c.scale));
      const y = labelsFor(rng, c.B, c.K);
      const gyValue = 0.75;
      const [loss, grad] = await ctx.tidy(() => {
        const zt = ctx.fromArray(z, [c.B, c.K]);
        zt.requiresGrad = true;
        const l = crossEntropy(zt, y, c.eps);
        const grads = ctx.backward(l, ctx.fromArray([gyValue], [1]));
        return [l.read(), grads.get(zt.id)!.read()] as const;
      });
      expectClose(await loss, [ref.crossEntropyForward(z, y, c.K, c.eps)], { atol: 1e-5, rtol: 1e-4 }, 'loss');
      expectClose(await grad, ref.crossEntropyBackward(z, y, c.K, c.eps, gyValue), { atol: 1e-6, rtol: 1e-4 }, 'dL/dz');
    });
  }

  it('rejects labels outside [0, K) and a label count that is not the batch', () => {
    const ctx = getCtx();
    ctx.tidy(() => {
      const z = ctx.zeros([2, 3]);
      expect(() => crossEntropy(z, [0, 3])).toThrow(/label 3 of row 1 is not a class index in \[0, 3\)/);
      expect(() => crossEntropy(z, [0, -1])).toThrow(/label -1/);
      expect(() => crossEntropy(z, [0])).toThrow(/1 labels for 2 rows/);
    });
  });
});

describe('globalAvgPool on the GPU', () => {
  const getCtx = useContext();
  // f16: x and dy rounded to f16 first, the mean in f32 (the bounds below), the result stored
  // as f16 once (one f16 ulp, test/helpers/f16.ts).
  for (const dtype of ['f32', 'f16'] as const) for (const [B, H, W, C] of [[1, 1, 1, 5], [3, 2, 2, 7], [2, 7, 7, 64], [5, 3, 1, 261]] as const) {
    it(`${B}x${H}x${W}x${C}: forward and backward${dtype === 'f16' ? ' [f16]' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const act = (tol: { atol: number; rtol: number }) => (dtype === 'f16' ? storedAsF16(tol) : tol);
      const rng = new Rng(B * 1000 + C);
      const S = H * W;
      const x = stored(rng.array(B * S * C, -3, 3));
      const gy = stored(rng.array(B * C));
      const [y, gx] = await ctx.tidy(() => {
        const layout = SiteLayout.dense(B, H, W);
        const xt = ctx.fromArray(x, [layout.rows, C], layout, dtype);
        xt.requiresGrad = true;
        const yt = globalAvgPool(xt);
        expect(yt.shape).toEqual([B, C]);
        expect(yt.dtype).toBe(dtype);
        const grads = ctx.backward(yt, ctx.fromArray(gy, [B, C], null, dtype));
        return [yt.read(), grads.get(xt.id)!.read()] as const;
      });
      expectClose(await y, ref.avgPoolForward(x, B, S, C), act({ atol: 1e-6, rtol: 1e-5 }), 'pooled');
      expectClose(await gx, ref.avgPoolBackward(gy, B, S, C), act({ atol: 1e-7, rtol: 1e-6 }), 'dL/dx');
    });
  }

  it('rejects a map without a dense layout', () => {
    const ctx = getCtx();
    ctx.tidy(() => expect(() => globalAvgPool(ctx.zeros([4, 3]))).toThrow(/dense feature map/));
  });
});
