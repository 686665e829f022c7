/**
 * Dynamic loss scaling (src/optim/loss-scale.ts, shaders/grad-state.wgsl `scaled_state`) against a
 * hand-worked GradScaler sequence, on f32 tensors: the gradients are planted already scaled
 * (as a backward seeded with the scale makes them), with a non-finite value on the steps that
 * overflow.
 */
import { describe, expect, it } from 'vitest';
import { Lamb } from '../../src/optim/lamb.ts';
import { LossScaler, lossScaleOptions, nextLossScale, type LossScaleState } from '../../src/optim/loss-scale.ts';
import type { Context } from '../../src/tensor/context.ts';
import type { Parameter } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';

const OPTIONS = { initScale: 8, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 };

/**
 * Worked by hand from GradScaler's rules with the options above: `bad` steps have non-finite
 * gradients. After each step: the scale and the clean-step count.
 */
const SEQUENCE: { bad: number; scale: number; cleanSteps: number }[] = [
  { bad: 0, scale: 8, cleanSteps: 1 },
  { bad: 0, scale: 8, cleanSteps: 2 },
  { bad: Infinity, scale: 4, cleanSteps: 0 }, // overflow: skip, back off
  { bad: 0, scale: 4, cleanSteps: 1 },
  { bad: 0, scale: 4, cleanSteps: 2 },
  { bad: 0, scale: 8, cleanSteps: 0 }, // third clean step in a row: grow
  { bad: 0, scale: 8, cleanSteps: 1 },
  { bad: -Infinity, scale: 4, cleanSteps: 0 },
  { bad: NaN, scale: 2, cleanSteps: 0 },
  { bad: 0, scale: 2, cleanSteps: 1 },
];

const SHAPES: Record<string, number[]> = { 'w.weight': [5, 7], 'w.bias': [7] };

function gradients(step: number, name: string, size: number): Float32Array {
  // Deterministic, varied signs and magnitudes (some large enough for the norm clip of 5).
  return Float32Array.from({ length: size }, (_, i) => Math.sin(1.3 * i + 0.7 * step + name.length) * (1 + (i % 4)));
}

function makeParams(ctx: Context): [string, Parameter][] {
  return Object.entries(SHAPES).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    return [name, ctx.parameter(name, shape, Float32Array.from({ length: size }, (_, i) => Math.cos(0.37 * i) * 0.5))];
  });
}

function plant(ctx: Context, params: [string, Parameter][], step: number, scale: number, bad: number): void {
  for (const [name, p] of params) {
    const g = gradients(step, name, p.size).map((x) => x * scale);
    if (bad !== 0 && name.endsWith('.weight')) g[3] = bad;
    p.grad ??= ctx.persistent(p.shape);
    ctx.gpu.write(p.grad.buffer, g);
  }
}

describe('dynamic loss scaling', () => {
  const getCtx = useContext();

  it('the host reference follows the hand-worked sequence', () => {
    let s: LossScaleState = { scale: OPTIONS.initScale, cleanSteps: 0 };
    for (const row of SEQUENCE) {
      s = nextLossScale(s, row.bad !== 0, OPTIONS);
      expect(s).toEqual({ scale: row.scale, cleanSteps: row.cleanSteps });
    }
    // Growth that would overflow float32 keeps the scale (GradScaler checks the grown scale is finite).
    expect(nextLossScale({ scale: 2 ** 127, cleanSteps: 2 }, false, OPTIONS)).toEqual({ scale: 2 ** 127, cleanSteps: 0 });
  });

  it('rejects options GradScaler would not take, naming them', () => {
    expect(() => lossScaleOptions({ backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => lossScaleOptions({ growthFactor: 0.5 })).toThrow(/growthFactor/);
    expect(() => lossScaleOptions({ growthInterval: 0 })).toThrow(/growthInterval/);
    expect(() => lossScaleOptions({ initScale: 0 })).toThrow(/initScale/);
    expect(lossScaleOptions()).toEqual({ initScale: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 });
  });

  for (const kind of ['lamb', 'adamw'] as const) {
    it(`${kind}: skips and backs off on overflow, grows after clean steps, and otherwise updates exactly as unscaled gradients do`, async () => {
      const ctx = getCtx();
      const scaled = makeParams(ctx);
      const plain = makeParams(ctx);
      const scaler = new LossScaler(ctx, OPTIONS);
      const withScaler = new Lamb(ctx, scaled, { kind, beta2: 0.95, maxGradNorm: 5, scaler });
      const reference = new Lamb(ctx, plain, { kind, beta2: 0.95, maxGradNorm: 5 });
      let scale = OPTIONS.initScale;
      let applied = 0;
      for (let step = 0; step < SEQUENCE.length; step++) {
        const row = SEQUENCE[step]!;
        const before = await Promise.all(scaled.map(([, p]) => p.read()));
        const moments = await Promise.all([...withScaler.stateTensors().values()].map((t) => t.read()));
        plant(ctx, scaled, step, scale, row.bad);
        plant(ctx, plain, step, 1, row.bad);
        withScaler.step(0.01, 0.05);
        reference.step(0.01, 0.05);
        const [status, ref, state] = await Promise.all([withScaler.status(), reference.status(), scaler.read()]);
        expect(state, `step ${step}`).toEqual({ scale: row.scale, cleanSteps: row.cleanSteps });
        expect(status.skipped, `step ${step}`).toBe(row.bad !== 0);
        if (row.bad === 0) applied++;
        expect(status.step).toBe(applied);
        const after = await Promise.all(scaled.map(([, p]) => p.read()));
        if (row.bad !== 0) {
          // The skipped step left the weights and the moments alone.
          after.forEach((a, k) => expect(a).toEqual(before[k]));
          const momentsAfter = await Promise.all([...withScaler.stateTensors().values()].map((t) => t.read()));
          momentsAfter.slice(0, -1).forEach((m, k) => expect(m).toEqual(moments[k]));
        } else {
          // The scale is a power of 2: dividing by clip * scale is dividing by clip, then by
          // the scale, exactly, so the update is the unscaled one bit for bit.
          expect(status.gradNorm).toBe(ref.gradNorm);
          const expected = await Promise.all(plain.map(([, p]) => p.read()));
          after.forEach((a, k) => expect(a).toEqual(expected[k]));
        }
        scale = row.scale;
      }
    });
  }

  it('a resumed scaler continues from the loaded state', async () => {
    const ctx = getCtx();
    const params = makeParams(ctx);
    const scaler = new LossScaler(ctx, OPTIONS);
    scaler.load({ scale: 32, cleanSteps: 2 });
    const lamb = new Lamb(ctx, params, { beta2: 0.95, scaler });
    plant(ctx, params, 0, 32, 0);
    lamb.step(0.01, 0.05);
    expect(await scaler.read()).toEqual({ scale: 64, cleanSteps: 0 });
    expect(() => scaler.load({ scale: 0, cleanSteps: 0 })).toThrow(/scale above 0/);
  });
});
