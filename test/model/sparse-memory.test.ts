/**
 * Sparse means sparse: the encoder's activation memory and dispatched work scale with the
 * visible fraction. A ResNet encoder (narrow, 128 px, 4x4 patch grid) runs forward and
 * backward on a mask keeping 6 of 16 patches and on a fully visible input; we compare the
 * pool's peak bytes above the weights and the workgroups dispatched.
 *
 * The bound: 6/16 = 0.375 of the sites are active. Per-layer constants (weights, their
 * gradients, BN statistics, layout tables) do not scale, so we allow up to 0.5x — the
 * official simulation (dense compute, then zeroing) costs 1.0x whatever the mask.
 */
import { describe, expect, it } from 'vitest';
import { ResNet } from '../../src/models/resnet.ts';
import { gatherSites } from '../../src/ops/sparse.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';

describe('sparse encoder cost scales with the visible fraction', () => {
  const getCtx = useContext();

  it('activation memory and work at 6/16 visible patches vs all visible', async () => {
    const ctx = getCtx();
    const B = 2;
    const size = 128;
    const encoder = new ResNet(ctx, new Rng(5), { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 16, planes: [16, 24, 32, 48] });
    const rng = new Rng(9);
    const pixels = Float32Array.from({ length: B * size * size * 3 }, () => rng.uniform(-2, 2));
    const dense = SiteLayout.dense(B, size, size);
    const image = ctx.fromArray(pixels, [dense.rows, 3], dense);
    const visible = new Uint8Array(B * 16);
    for (let b = 0; b < B; b++) for (const i of rng.permutation(16).slice(0, 6)) visible[b * 16 + i] = 1;
    const masks = { sparse: new PatchMask(B, 4, 4, visible), full: new PatchMask(B, 4, 4, new Uint8Array(B * 16).fill(1)) };

    const measure = async (mask: PatchMask) => {
      await ctx.gpu.sync();
      const pool = ctx.gpu.pool;
      const base = pool.liveBytes;
      pool.resetPeak();
      const wg0 = ctx.gpu.stats.workgroups;
      ctx.tidy(() => {
        const x = gatherSites(image, mask.layoutAt(size, size));
        const feats = encoder.forward(x);
        const loss = feats.map((f) => ew.sum(ew.mul(f, f))).reduce((a, b) => ew.add(a, b));
        ctx.backward(loss);
      });
      await ctx.gpu.sync();
      return { bytes: pool.peakBytes - base, workgroups: ctx.gpu.stats.workgroups - wg0 };
    };
    // A first run allocates the parameter gradients (persistent), so neither measured run
    // counts them in its peak.
    await measure(masks.sparse);
    const full = await measure(masks.full);
    const sparse = await measure(masks.sparse);
    const memRatio = sparse.bytes / full.bytes;
    const workRatio = sparse.workgroups / full.workgroups;
    if (process.env.WEBSPARK_VERBOSE) console.info({ full, sparse, memRatio, workRatio });
    expect(memRatio, `peak bytes ${sparse.bytes} vs ${full.bytes}`).toBeLessThan(0.5);
    expect(workRatio, `workgroups ${sparse.workgroups} vs ${full.workgroups}`).toBeLessThan(0.5);
    // And it is not free: the sparse run still does the active fraction's work.
    expect(memRatio).toBeGreaterThan(0.2);
    expect(workRatio).toBeGreaterThan(0.2);
    ctx.dispose();
  });
});
