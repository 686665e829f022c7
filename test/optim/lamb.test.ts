/**
 * LAMB against the official repository's own LAMB (pretrain/utils/lamb.py `TheSameAsTimmLAMB`,
 * with its parameter groups from utils/lr_control.py `get_param_groups`), run by
 * tools/make-fixtures.py in float64: parameter values, both moments and the global gradient
 * norm after each of three steps, on hand-made tensors that trigger clipping and the
 * zero-norm trust-ratio cases, with beta2 0.95 and 0.999. Whole-model training steps are
 * checked by test/optim/trajectory.test.ts.
 *
 * Tolerances (test/model/measured.ts): 10 x the official LAMB's own float32 error for each
 * tensor (its float32 run of the same three steps against its float64 run).
 */
import { describe, expect, it } from 'vitest';
import { Lamb } from '../../src/optim/lamb.ts';
import type { Parameter } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { manifest as modelManifest, readArrays } from '../model/fixture.ts';
import { expectMeasured, expectScalarMeasured, type ErrorTable } from '../model/measured.ts';

interface TinyFixture {
  file: string;
  lr: number[];
  wd: number[];
  shapes: Record<string, number[]>;
  runs: Record<string, { betas: [number, number]; grad_norm: number[]; grad_norm_torch_fp32: number[]; torch_fp32_error: ErrorTable }>;
}

const tiny = (modelManifest as unknown as { lamb_tiny: TinyFixture }).lamb_tiny;

describe('LAMB', () => {
  const getCtx = useContext();

  for (const [run, spec] of Object.entries(tiny.runs)) {
    it(`matches the official TheSameAsTimmLAMB on hand-made tensors (${run})`, async () => {
      const ctx = getCtx();
      const arrays = readArrays(tiny.file);
      const params: [string, Parameter][] = Object.entries(tiny.shapes).map(([name, shape]) => [
        name,
        ctx.parameter(name, shape, arrays.get(`init/${name}`)!.data),
      ]);
      const lamb = new Lamb(ctx, params, { beta1: spec.betas[0], beta2: spec.betas[1], eps: 1e-6, maxGradNorm: 5 });
      for (let step = 0; step < tiny.lr.length; step++) {
        for (const [name, p] of params) {
          p.grad ??= ctx.persistent(p.shape);
          ctx.gpu.write(p.grad.buffer, arrays.get(`grad/${step}/${name}`)!.data);
        }
        lamb.step(tiny.lr[step]!, tiny.wd[step]!);
        const status = await lamb.status();
        expect(status.skipped).toBe(false);
        expect(status.step).toBe(step + 1);
        expectScalarMeasured(status.gradNorm, spec.grad_norm[step]!, spec.grad_norm_torch_fp32[step]!, `grad-norm step ${step}`);
        const state = lamb.stateTensors();
        const got: Record<string, (name: string) => Promise<Float32Array>> = {
          param: (name) => params.find(([n]) => n === name)![1].read(),
          exp_avg: (name) => state.get(`${name}.exp_avg`)!.read(),
          exp_avg_sq: (name) => state.get(`${name}.exp_avg_sq`)!.read(),
        };
        for (const [name] of params) {
          for (const [what, read] of Object.entries(got)) {
            const key = `${what}/${step}/${name}`;
            expectMeasured(await read(name), arrays.get(`${run}/${key}`)!.data, spec.torch_fp32_error, key, `${run} ${key}`);
          }
        }
      }
      ctx.dispose();
    });
  }

  it('skips a step whose gradients are not finite, leaving weights, moments and the step count', async () => {
    const ctx = getCtx();
    const p = ctx.parameter('w.weight', [2, 2], [1, 2, 3, 4]);
    const lamb = new Lamb(ctx, [['w.weight', p]], { beta2: 0.95 });
    p.grad = ctx.persistent([2, 2]);
    ctx.gpu.write(p.grad.buffer, Float32Array.of(0.1, NaN, 0.2, 0.3));
    lamb.step(0.1, 0.05);
    const status = await lamb.status();
    expect(status.skipped).toBe(true);
    expect(status.step).toBe(0);
    expectClose(await p.read(), [1, 2, 3, 4], { atol: 0, rtol: 0 }, 'weights unchanged');
    expectClose(await lamb.stateTensors().get('w.weight.exp_avg')!.read(), [0, 0, 0, 0], { atol: 0, rtol: 0 }, 'moments unchanged');
    ctx.gpu.write(p.grad.buffer, Float32Array.of(0.1, 0.1, 0.2, 0.3));
    lamb.step(0.1, 0.05);
    expect((await lamb.status()).step).toBe(1);
    ctx.dispose();
  });
});
