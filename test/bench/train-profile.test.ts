/**
 * `bench train --profile` (bench/train-profile.ts, src/gpu/replay-profile.ts): on the test
 * driver, the profile of the scaled-down SparK step times exactly the step's dispatches
 * (Gpu.stats counts them in the normal replayed run), every family's time is >= 0 and their
 * sum > 0, and every pipeline of the step maps to a family other than 'other'
 * (bench/profile-families.ts). Where the adapter lacks 'timestamp-query', --profile refuses
 * with a message naming the feature.
 */
import { describe, expect, it } from 'vitest';
import { benchTrain } from '../../bench/train.ts';
import { familyOf } from '../../bench/profile-families.ts';
import { useContext } from '../helpers/gpu.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Context } from '../../src/tensor/context.ts';

describe('bench train --profile', () => {
  const getCtx = useContext();

  it('times every dispatch of the replayed step, grouped by kernel family', async () => {
    const ctx = getCtx();
    const run = benchTrain(ctx, { steps: 2, profile: { replays: 1, peakGflops: 100, peakGbps: 10 } });
    if (!ctx.gpu.features.has('timestamp-query')) {
      await expect(run).rejects.toThrow(/timestamp-query/);
      return;
    }
    const { summary } = await run;
    const p = summary.profile!;
    expect(p.dispatches).toBe(summary.dispatchesPerStep);
    expect(p.families.reduce((n, f) => n + f.dispatches, 0)).toBe(p.dispatches);
    for (const f of p.families) {
      expect(f.ms).toBeGreaterThanOrEqual(0);
      expect(f.family).not.toBe('other');
      expect(f.ofPeak).not.toBeNull();
    }
    expect(p.kernelMs).toBeGreaterThan(0);
    expect(p.stepMs).toBe(summary.msPerStep);
    const names = p.families.map((f) => f.family);
    for (const f of ['conv forward', 'conv input-grad', 'conv weight-grad', 'transposed conv', 'BatchNorm', 'densify/mask', 'loss', 'optimizer (LAMB)']) {
      expect(names).toContain(f);
    }
    const top = p.topPipelines.map((x) => x.ms);
    expect(top.length).toBeGreaterThan(0);
    expect(top).toEqual([...top].sort((a, b) => b - a));
    // The convs' useful FLOPs are known: their GFLOP/s is positive wherever they took time.
    for (const f of p.families.filter((x) => x.measure === 'flops')) expect(f.work).toBeGreaterThan(0);
  });

  it("refuses before any work where the device lacks 'timestamp-query'", async () => {
    const ctx = getCtx();
    // The same Gpu seen without the feature (benchTrain checks it before anything else).
    const gpu = Object.create(ctx.gpu, { features: { value: new Set<string>() } }) as Gpu;
    const noTimestamps = { gpu, precision: ctx.precision } as Context;
    const before = ctx.gpu.stats.dispatches;
    await expect(benchTrain(noTimestamps, { steps: 2, profile: {} })).rejects.toThrow(/lacks the WebGPU feature 'timestamp-query'/);
    expect(ctx.gpu.stats.dispatches).toBe(before);
  });
});

describe('familyOf', () => {
  it('maps conv launches by their note, and transposed convs apart from the convs', () => {
    const gemm = 'conv2d:gemm:HAS_BIAS=false,PASS=0,POINTWISE=false';
    expect(familyOf(gemm, [{ tag: 'conv.dx', flops: 1 }])).toBe('conv input-grad');
    expect(familyOf(gemm, [{ tag: 'convTranspose2d' }, { tag: 'conv.fwd', flops: 1 }])).toBe('transposed conv');
    expect(familyOf(gemm)).toBe('conv forward');
    expect(familyOf('conv2d:gemm:PASS=2')).toBe('conv weight-grad');
    expect(familyOf('conv-direct:direct_input_grad:')).toBe('conv input-grad');
    expect(familyOf('depthwise:backward_weight:SPARSE=true')).toBe('conv weight-grad');
    expect(familyOf('chunks:sum_chunks:', [{ tag: 'depthwise.backward_weight', flops: 1 }])).toBe('conv weight-grad');
  });

  it('maps the other shader files by file, and an unknown one to other', () => {
    expect(familyOf('layernorm:forward:TPR=4:act=f16')).toBe('LayerNorm');
    expect(familyOf('lamb:apply:')).toBe('optimizer (LAMB)');
    expect(familyOf('sparse:relayout:X=1')).toBe('densify/mask');
    expect(familyOf('no-such-shader:main:')).toBe('other');
  });
});
