/**
 * Dynamic loss scaling in the trainer, with f32 tensors (TrainConfig.lossScale turns it on in
 * any precision): the scaled run learns the same numbers as the unscaled one, the scale is
 * updated on the GPU through recorded-and-replayed steps, a planted overflow skips its step and
 * halves the scale without pausing the run, and a checkpoint carries the scaler state so a
 * resumed run continues exactly. And in f16 (where the adapter has shader-f16), GradScaler's
 * defaults train the tiny model as f32 does.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import type { StepMetrics, TrainConfig } from '../../src/train/trainer.ts';
import { useContext } from '../helpers/gpu.ts';
import { needF16 } from '../helpers/f16.ts';
import { Context } from '../../src/tensor/context.ts';
import { poison } from '../helpers/poison.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

const N = 4;
/** A small growth interval so growth happens within N steps: the scale doubles after every 3rd clean step. */
const scaled = (steps: number): TrainConfig => ({ ...tinyConfig(steps), lossScale: { initScale: 1024, growthInterval: 3 } });
const tmp = (name: string) => mkdtempSync(join(tmpdir(), `webspark-${name}-`));
/**
 * The metrics, checked to have arrived in step order: the trainer handles reports in step
 * order although the GPU reads' promises can settle out of it (lavapipe did, intermittently).
 */
function inStepOrder(ms: StepMetrics[]): StepMetrics[] {
  expect(ms.map((m) => m.step)).toEqual(ms.map((_, i) => ms[0]!.step + i));
  return ms;
}
const weights = (path: string) => readWeightFile(new Uint8Array(readFileSync(path)), path);

describe('loss scaling in training', () => {
  const getCtx = useContext();

  it('f32 with a power-of-2 loss scale gives the unscaled run its numbers; the scale grows through replayed steps', async () => {
    const ctx = getCtx();
    const plain: StepMetrics[] = [];
    const withScale: StepMetrics[] = [];
    const a = await tinyTrainer(ctx, tinyConfig(N), tmp('plain'), { metrics: (m) => void plain.push(m) });
    expect(await a.trainer.train()).toBe('finished');
    ctx.dispose();
    const b = await tinyTrainer(ctx, scaled(N), tmp('scaled'), { metrics: (m) => void withScale.push(m) });
    expect(await b.trainer.train()).toBe('finished');
    ctx.dispose();
    const [p, w] = [inStepOrder(plain), inStepOrder(withScale)];
    expect(p.map((m) => m.lossScale)).toEqual([1, 1, 1, 1]);
    expect(w.map((m) => m.lossScale)).toEqual([1024, 1024, 1024, 2048]);
    // Multiplying the seed by 2^k scales every gradient exactly (barring underflow), and the
    // optimizer divides by it exactly: the losses and gradient norms are the unscaled ones.
    expect(w.map((m) => m.loss)).toEqual(p.map((m) => m.loss));
    expect(w.map((m) => m.gradNorm)).toEqual(p.map((m) => m.gradNorm));
    const end = [weights(a.store.latest()!.path), weights(b.store.latest()!.path)];
    for (const [key, v] of end[0]!.arrays) {
      // The optimizer's status holds the divisor it applied, clip x scale with scaling.
      if (key === 'optimizer.step_state') continue;
      expect(Buffer.from(end[1]!.arrays.get(key)!.data.buffer).equals(Buffer.from(v.data.buffer)), key).toBe(true);
    }
    expect(JSON.parse(end[1]!.metadata['webspark.run']!).lossScale).toEqual({ scale: 2048, cleanSteps: 1 });
    expect(JSON.parse(end[0]!.metadata['webspark.run']!).lossScale).toBeUndefined();
  }, 300_000);

  it('a planted inf gradient skips the update and halves the scale; overflow skips do not pause the run', async () => {
    const ctx = getCtx();
    const metrics: StepMetrics[] = [];
    const notices: string[] = [];
    // maxConsecutiveSkips 1 would pause on any skip that is not an overflow the scale explains.
    const config = { ...scaled(N), maxConsecutiveSkips: 1 };
    const { trainer } = await tinyTrainer(ctx, config, tmp('overflow'), { metrics: (m) => void metrics.push(m), notice: (m) => void notices.push(m) });
    poison(trainer, (s) => s === 1 || s === 2, Infinity);
    expect(await trainer.train()).toBe('finished');
    expect((await trainer.optimizer.status()).step).toBe(2);
    ctx.dispose();
    const ms = inStepOrder(metrics);
    expect(ms.map((m) => m.skippedStep)).toEqual([false, true, true, false]);
    expect(ms.map((m) => m.skippedSteps)).toEqual([0, 1, 2, 2]);
    expect(ms.map((m) => m.lossScale)).toEqual([1024, 1024, 512, 256]);
    expect(notices.filter((n) => /overflowed/.test(n))).toEqual([
      'step 1: gradients overflowed at loss scale 1024; the update was skipped and the scale lowered',
      'step 2: gradients overflowed at loss scale 512; the update was skipped and the scale lowered',
    ]);
  }, 300_000);

  it(`resume: ${N} scaled steps straight equal 2 steps + checkpoint + ${N - 2} steps restored into a new trainer`, async () => {
    const ctx = getCtx();
    const straight: StepMetrics[] = [];
    const split: StepMetrics[] = [];
    const a = await tinyTrainer(ctx, scaled(N), tmp('scaled-straight'), { metrics: (m) => void straight.push(m) });
    expect(await a.trainer.train()).toBe('finished');
    ctx.dispose();
    const first = await tinyTrainer(ctx, scaled(N), tmp('scaled-split'), { metrics: (m) => void split.push(m) });
    expect(await first.trainer.train(2)).toBe('stopped');
    const mid = weights(first.store.latest()!.path);
    // Two clean steps of three: the count must survive, or the resumed run grows a step late.
    expect(JSON.parse(mid.metadata['webspark.run']!).lossScale).toEqual({ scale: 1024, cleanSteps: 2 });
    ctx.dispose();
    const second = await tinyTrainer(ctx, scaled(N), tmp('scaled-resumed'), { metrics: (m) => void split.push(m) });
    second.trainer.restore(mid.arrays, mid.metadata);
    expect(await second.trainer.train()).toBe('finished');
    ctx.dispose();
    const [s1, s2] = [inStepOrder(straight), inStepOrder(split)];
    expect(s2.map((m) => m.lossScale)).toEqual(s1.map((m) => m.lossScale));
    expect(s2.map((m) => m.lossScale)).toEqual([1024, 1024, 1024, 2048]);
    expect(s2.map((m) => m.loss)).toEqual(s1.map((m) => m.loss));
    const end = [weights(a.store.latest()!.path), weights(second.store.latest()!.path)];
    for (const [key, v] of end[0]!.arrays) {
      expect(Buffer.from(end[1]!.arrays.get(key)!.data.buffer).equals(Buffer.from(v.data.buffer)), key).toBe(true);
    }
  }, 400_000);

  it('f16 with GradScaler defaults: no overflow at 2^16, the f32 run\'s losses and gradient norms to f16 storage error', async (t) => {
    const f32 = getCtx();
    needF16(t, f32);
    const ctx = new Context(f32.gpu, { precision: 'f16' });
    const half: StepMetrics[] = [];
    const full: StepMetrics[] = [];
    try {
      const a = await tinyTrainer(ctx, { ...tinyConfig(N), precision: 'f16' }, tmp('f16'), { metrics: (m) => void half.push(m) });
      expect(await a.trainer.train()).toBe('finished');
      expect(JSON.parse(weights(a.store.latest()!.path).metadata['webspark.run']!).lossScale).toEqual({ scale: 65536, cleanSteps: N });
    } finally {
      ctx.dispose();
    }
    const b = await tinyTrainer(f32, tinyConfig(N), tmp('f32'), { metrics: (m) => void full.push(m) });
    expect(await b.trainer.train()).toBe('finished');
    f32.dispose();
    const [h, f] = [inStepOrder(half), inStepOrder(full)];
    expect(h.map((m) => m.lossScale)).toEqual([65536, 65536, 65536, 65536]);
    expect(h.map((m) => m.skippedStep)).toEqual([false, false, false, false]);
    // Activations stored as f16 carry a relative error of up to 2^-10 each; the loss and the
    // norm average many of them (measured: 3e-5 relative on the loss, 1e-3 on the norm), so
    // one f16 ulp bounds the loss and a few the norm. A gradient lost to underflow (no
    // scaling) or an unscaled update would be off by far more.
    h.forEach((m, i) => {
      expect(Math.abs(m.loss - f[i]!.loss) / f[i]!.loss, `loss, step ${i}`).toBeLessThan(2 ** -10);
      expect(Math.abs(m.gradNorm - f[i]!.gradNorm) / f[i]!.gradNorm, `grad norm, step ${i}`).toBeLessThan(8 * 2 ** -10);
    });
  }, 300_000);

  it('a run configured for a precision its Context does not store is refused, naming both', async () => {
    const ctx = getCtx();
    await expect(tinyTrainer(ctx, { ...tinyConfig(1), precision: 'f16' }, tmp('mismatch'))).rejects.toThrow(
      /^the run is configured for precision f16 but its Context stores f32: make it with new Context\(gpu, \{ precision: 'f16' \}\)$/,
    );
    ctx.dispose();
  });
});
