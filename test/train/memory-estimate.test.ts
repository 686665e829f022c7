/**
 * The GPU memory estimate (src/train/memory-estimate.ts) against what a training step really
 * holds: the buffer pool's peak bytes (gpu.pool.peakBytes, every pooled buffer handed out at
 * once) over one step of small configurations on SwiftShader, from an empty pool.
 *
 * Held-out configurations: ACTIVATION_FACTOR was fitted on two runs (tiny basic-block ResNet
 * @96, batch 3, decoder 64, mask 0.75; tiny bottleneck ResNet @64, batch 3, decoder 48: ratios
 * 1.03 and 0.97 when fitted). The estimate is checked here on configurations it was NOT fitted
 * to: another family (ConvNeXt, LayerNorm densify), another input size and mask ratio; their
 * ratios estimate / measured peak were 0.894 and 1.202 on SwiftShader. Do not refit on these;
 * a refit needs its own runs, and these stay held out.
 *
 * Tolerance: the total within ±25 % of the measured peak. The estimate counts the tensors the
 * forward pass keeps and scales them by one fitted factor for the backward pass; it does not
 * model each kernel's temporaries, and the pool's size classes round each buffer up by 0-25 %.
 * ±25 % is enough to warn before a limit and to suggest a batch, which is what it is for.
 *
 * Out of memory: a batch far too large for a binding limit we impose fails with
 * GpuOutOfMemoryError; the advice names the largest batch that fits by the estimate, and that
 * batch then trains under the same limit (nothing crashed, the device still works).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Context } from '../../src/tensor/context.ts';
import { GpuOutOfMemoryError } from '../../src/gpu/errors.ts';
import { estimateTrainingMemory, largestBatchThatFits, outOfMemoryAdvice, type MemoryConfig } from '../../src/train/memory-estimate.ts';
import type { TrainConfig } from '../../src/train/trainer.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

const TOLERANCE = 0.25;

describe('GPU memory estimate', () => {
  const getCtx = useContext();
  const dir = mkdtempSync(join(tmpdir(), 'webspark-mem-'));

  async function measuredPeak(config: TrainConfig): Promise<number> {
    const gpu = getCtx().gpu;
    await gpu.sync();
    const base = gpu.pool.liveBytes;
    gpu.pool.resetPeak();
    const ctx = new Context(gpu);
    try {
      const { trainer } = await tinyTrainer(ctx, config, dir);
      await trainer.train(1); // the first step also allocates gradients and LAMB's moments
      await gpu.sync();
      return gpu.pool.peakBytes - base;
    } finally {
      ctx.dispose();
    }
  }

  const cases: [string, Partial<TrainConfig>][] = [
    ['held out: tiny ConvNeXt @64, batch 2, decoder 32', { model: 'convnext_tiny', resnet: undefined, convnext: { depths: [1, 1, 2, 1], dims: [8, 16, 24, 32] }, batchSize: 2, decoderWidth: 32 }],
    ['held out: tiny basic-block ResNet @128, batch 2, decoder 32, mask 0.5', { inputSize: 128, batchSize: 2, decoderWidth: 32, maskRatio: 0.5 }],
  ];
  for (const [name, over] of cases) {
    it(`total within ±${TOLERANCE * 100} % of the pool's measured peak: ${name}`, async () => {
      const config = { ...tinyConfig(2), ...over, checkpointEvery: 0 };
      const est = estimateTrainingMemory(config);
      const peak = await measuredPeak(config);
      console.info(`${name}: estimate ${est.total} B (params ${est.parameters}, opt ${est.optimizer}, acts ${est.activations}), measured peak ${peak} B, ratio ${(est.total / peak).toFixed(3)}`);
      expect(Math.abs(est.total / peak - 1)).toBeLessThanOrEqual(TOLERANCE);
    }, 240_000);
  }

  it('counts f16 activations as 2 bytes, the image and the loss targets 4', () => {
    const cfg: MemoryConfig = { model: 'resnet18', inputSize: 224, batchSize: 8 };
    const f32 = estimateTrainingMemory(cfg);
    const f16 = estimateTrainingMemory({ ...cfg, precision: 'f16' });
    expect(f16.parameters).toBe(f32.parameters);
    expect(f16.optimizer).toBe(f32.optimizer);
    // Every activation halves but the image and the loss's targets (f32 either way).
    const ratio = f16.activations / f32.activations;
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.55);
  });

  it('grows with the batch; largestBatchThatFits is the largest batch under the budget', () => {
    const cfg: MemoryConfig = { model: 'resnet18', inputSize: 224, decoderWidth: 768, maskRatio: 0.6, batchSize: 1 };
    const a = estimateTrainingMemory({ ...cfg, batchSize: 8 });
    const b = estimateTrainingMemory({ ...cfg, batchSize: 16 });
    expect(b.activations).toBeGreaterThan(1.9 * a.activations);
    expect(b.parameters).toBe(a.parameters);
    // ResNet-18 encoder + decoder 768 wide: tens of millions of parameters (not a unit slip).
    expect(a.parameters / 4).toBeGreaterThan(11e6);
    expect(a.parameters / 4).toBeLessThan(60e6);
    const budget = 2 * 2 ** 30;
    const n = largestBatchThatFits(cfg, budget);
    expect(estimateTrainingMemory({ ...cfg, batchSize: n }).total).toBeLessThanOrEqual(budget);
    expect(estimateTrainingMemory({ ...cfg, batchSize: n + 1 }).total).toBeGreaterThan(budget);
    expect(largestBatchThatFits(cfg, 1024)).toBe(0);
  });

  it('out of memory at a batch far too large: the message names the largest batch that fits, which then trains', async () => {
    const gpu = getCtx().gpu;
    // Impose a small per-buffer limit (as a small device would have): 512 KiB per binding.
    const limit = 2 ** 19;
    const limits = { maxBufferSize: 64 * limit, maxStorageBufferBindingSize: limit };
    const real = gpu.limits;
    Object.defineProperty(gpu, 'limits', { value: { ...realLimits(real), maxStorageBufferBindingSize: limit }, configurable: true });
    try {
      const big = { ...tinyConfig(1), batchSize: 64 };
      let caught: unknown = null;
      const ctx = new Context(gpu);
      try {
        const { trainer } = await tinyTrainer(ctx, big, dir);
        await trainer.train(1);
      } catch (err) {
        caught = err;
      } finally {
        ctx.dispose();
      }
      expect(caught).toBeInstanceOf(GpuOutOfMemoryError);
      const advice = outOfMemoryAdvice(big, limits, (caught as Error).message);
      console.info(advice);
      const best = Number(/largest batch that fits by the estimate is (\d+)/.exec(advice)?.[1]);
      expect(best).toBeGreaterThanOrEqual(1);
      expect(best).toBeLessThan(64);
      // The suggested batch trains under the same limit: the device survived the failure.
      const ok = new Context(gpu);
      try {
        const { trainer } = await tinyTrainer(ok, { ...big, batchSize: best }, dir);
        await expect(trainer.train(1)).resolves.toBe('finished');
        expect(trainer.step).toBe(1);
      } finally {
        ok.dispose();
      }
    } finally {
      Object.defineProperty(gpu, 'limits', { value: real, configurable: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

function realLimits(l: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in l) out[k] = (l as unknown as Record<string, number>)[k]!;
  return out;
}
