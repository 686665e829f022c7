/**
 * The bias corrections 1 - beta^t of the GPU optimizer at steps where they are hardest to get
 * in float32: t = 1..3 with beta near 1 (1 - beta^t is a small difference of two numbers near
 * 1), both sides of the switch between the expm1 series and 1 - exp (t ln beta = -0.5), and a
 * long run (t = 100000).
 *
 * One AdamW step from p = 0 and m = v = 0 with the step counter set to t - 1 gives
 * p = -lr * u exactly, with u = ((1-b1) g / bc1) / (sqrt((1-b2) g^2) / sqrt(bc2) + eps), so the
 * parameter shows the corrections directly. Reference: float64. Tolerance: 4e-6 relative,
 * about 32 float32 ulp: the update is a handful of float32 operations (a few ulp each) plus
 * the float32 rounding of the inputs (lr, betas, eps); an error in bc of 1e-4 relative (what
 * `1 - pow(0.999, 2)` gave on lavapipe) is 25 times the tolerance.
 */
import { describe, it } from 'vitest';
import { Lamb } from '../../src/optim/lamb.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { Rng, f32 } from '../helpers/random.ts';

describe('GPU optimizer bias corrections', () => {
  const context = useContext();
  const cases: [number, number, number][] = [
    // [beta1, beta2, t]
    [0.9, 0.999, 1],
    [0.9, 0.999, 2],
    [0.9, 0.999, 3],
    [0.9, 0.95, 2],
    [0.9, 0.999, 499], // t ln beta2 just above -0.5: series
    [0.9, 0.999, 501], // just below: 1 - exp
    [0.99, 0.9999, 7],
    [0.9, 0.999, 100000],
  ];

  for (const [b1, b2, t] of cases) {
    it(`beta1 ${b1}, beta2 ${b2}, step ${t}`, async () => {
      const ctx = context();
      const rng = new Rng(t);
      const n = 64;
      const g = f32(rng.array(n, -1, 1));
      const param = ctx.parameter('w', [n], new Float32Array(n));
      param.grad = ctx.persistent([n]);
      ctx.gpu.write(param.grad.buffer, Float32Array.from(g));
      const lr = 1e-2;
      const eps = 1e-8;
      const opt = new Lamb(ctx, [['w', param]], { kind: 'adamw', beta1: b1, beta2: b2, eps, maxGradNorm: 0 });
      ctx.gpu.write(opt.stateTensors().get('step_state')!.buffer, new Float32Array([1, 0, 0, t - 1]));
      opt.step(lr, 0);

      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const expected = Float64Array.from(g, (x) => {
        const m = (1 - b1) * x;
        const v = (1 - b2) * x * x;
        return -lr * ((m / bc1) / (Math.sqrt(v) / Math.sqrt(bc2) + eps));
      });
      expectClose(await param.read(), expected, { atol: 0, rtol: 4e-6 }, `step ${t}`);
      ctx.dispose();
    });
  }
});
