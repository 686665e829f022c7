/**
 * The Table 5 ablations as model options. Sparse masking (SparK) against zero-out (a dense
 * conv net on the image with masked patches set to 0), on a narrow ResNet at 128 px with a
 * 4x4 patch grid, in training mode (BatchNorm on batch statistics, as in pre-training):
 *  - sparse: masked sites hold exactly zero at every stage (no rows there; densified with
 *    zeros), and visible features do not depend on masked pixels (bitwise identical);
 *  - zero-out: masked sites are not zero (BatchNorm over all sites shifts them, convolutions
 *    smear the border), and visible features next to the mask change when the mask pattern
 *    changes, although those visible pixels are the same ("mask pattern vanishing").
 * Single-scale decoding: only the last stage reaches the decoder (no densify layers for the
 * other scales), and the model still trains (finite loss, gradients reach the encoder).
 */
import { describe, expect, it } from 'vitest';
import { createSparK, type SparKConfig } from '../../src/models/registry.ts';
import type { SparK } from '../../src/models/spark.ts';
import { scatterToDense } from '../../src/ops/sparse.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';

const SIZE = 128;
const B = 2;
const GRID = 4;
const CONFIG: SparKConfig = {
  model: 'resnet18',
  resnet: { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 8, planes: [8, 8, 16, 16] },
  inputSize: SIZE,
  decoderWidth: 32,
};

/** Visible flags per image from a 16-character 0/1 string (row-major 4x4, 1 = visible). */
function mask(...rows: string[]): PatchMask {
  return new PatchMask(B, GRID, GRID, Uint8Array.from(rows.join('').split('').map(Number)));
}

// Patch (1,1) masked in both images; mask B also hides (1,2). Patch (0,2) is visible in both
// and borders (1,2).
const A = mask('1111101111111111', '1111101111111111');
const AB = mask('1111100111111111', '1111100111111111');

function image(seed: number, replaceMasked?: { mask: PatchMask; seed: number }): Float32Array {
  const rng = new Rng(seed);
  const px = Float32Array.from({ length: B * SIZE * SIZE * 3 }, () => rng.uniform(-2, 2));
  if (replaceMasked) {
    const other = new Rng(replaceMasked.seed);
    const p = SIZE / GRID;
    for (let b = 0; b < B; b++) for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
      if (replaceMasked.mask.visible[(b * GRID + Math.floor(y / p)) * GRID + Math.floor(x / p)]) continue;
      for (let c = 0; c < 3; c++) px[((b * SIZE + y) * SIZE + x) * 3 + c] = other.uniform(-5, 5);
    }
  }
  return px;
}

/** Each stage's features as dense [B, H, W, C] arrays (sparse ones densified with zeros). */
async function stageMaps(model: SparK, pixels: Float32Array, m: PatchMask) {
  const ctx = model.ctx;
  const layout = SiteLayout.dense(B, SIZE, SIZE);
  const reads = ctx.tidy(() =>
    ctx.noGrad(() => {
      const x = ctx.fromArray(pixels, [layout.rows, 3], layout);
      return model.forward(x, m).features.map((f: Tensor) => {
        const dense = f.layout!.isDense ? f : scatterToDense(f);
        return { h: f.layout!.height, w: f.layout!.width, c: f.channels, data: dense.read(), sparse: !f.layout!.isDense };
      });
    }),
  );
  return Promise.all(reads.map(async (r) => ({ ...r, data: await r.data })));
}

/** Max |value| over the sites of patch (py, px) of the grid, all images and channels. */
function patchMax(map: { h: number; w: number; c: number; data: Float32Array }, py: number, px: number, other?: Float32Array): number {
  const f = map.h / GRID;
  let m = 0;
  for (let b = 0; b < B; b++) for (let y = py * f; y < (py + 1) * f; y++) for (let x = px * f; x < (px + 1) * f; x++) {
    for (let c = 0; c < map.c; c++) {
      const i = ((b * map.h + y) * map.w + x) * map.c + c;
      m = Math.max(m, Math.abs(map.data[i]! - (other ? other[i]! : 0)));
    }
  }
  return m;
}

/** Visible-site values of every stage, in order. */
function visibleValues(maps: Awaited<ReturnType<typeof stageMaps>>, m: PatchMask): Float32Array[] {
  return maps.map((map) => {
    const f = map.h / GRID;
    const out: number[] = [];
    for (let b = 0; b < B; b++) for (let y = 0; y < map.h; y++) for (let x = 0; x < map.w; x++) {
      if (!m.visible[(b * GRID + Math.floor(y / f)) * GRID + Math.floor(x / f)]) continue;
      for (let c = 0; c < map.c; c++) out.push(map.data[((b * map.h + y) * map.w + x) * map.c + c]!);
    }
    return Float32Array.from(out);
  });
}

describe('sparse vs zero-out masking (Table 5)', () => {
  const ctx = useContext();

  it('sparse: masked sites are exactly zero at every stage; visible features ignore masked pixels', async () => {
    const model = createSparK(ctx(), new Rng(1), { ...CONFIG, masking: 'sparse' }).train();
    const a = await stageMaps(model, image(3), A);
    const b = await stageMaps(model, image(3, { mask: A, seed: 99 }), A);
    // Stage strides 4..32 on a 128 px input: 32, 16, 8, 4 sites a side, so every stage has whole patches.
    for (const map of a) {
      expect(map.sparse).toBe(true);
      expect(patchMax(map, 1, 1)).toBe(0);
      expect(patchMax(map, 0, 2)).toBeGreaterThan(0);
    }
    // Different masked pixels, same mask: bitwise the same visible features (BatchNorm statistics included).
    const va = visibleValues(a, A);
    const vb = visibleValues(b, A);
    va.forEach((v, i) => expect(vb[i]).toEqual(v));
  });

  it('zero-out: masked sites are not zero, and visible features near the mask change with the mask pattern', async () => {
    const model = createSparK(ctx(), new Rng(1), { ...CONFIG, masking: 'zero-out' }).train();
    const a = await stageMaps(model, image(3), A);
    const ab = await stageMaps(model, image(3), AB);
    for (const map of a) {
      expect(map.sparse).toBe(false);
      // BatchNorm over all sites moves the zeroed region off zero (nonzero means after ReLU ~0.1 and up).
      expect(patchMax(map, 1, 1)).toBeGreaterThan(1e-3);
    }
    // Patch (0,2) has the same pixels under both masks; its neighbour (1,2) went from image to zeros.
    // Stage 1 (stride 4): a 7x7 stem and 3x3 convs see across the border, and the batch statistics change.
    const changed = patchMax(ab[0]!, 0, 2, a[0]!.data);
    expect(changed).toBeGreaterThan(1e-3);
    // And zero-out hides nothing from the statistics: the same test under sparse masking changes
    // visible features too (the active set differs), but masked sites stay exactly zero there.
    const sparse = createSparK(ctx(), new Rng(1), { ...CONFIG, masking: 'sparse' }).train();
    const s = await stageMaps(sparse, image(3), AB);
    for (const map of s) expect(patchMax(map, 1, 2)).toBe(0);
  });

  it('single-scale decoding trains: finite loss, gradients reach the encoder, no finer-scale densify layers', async () => {
    const c = ctx();
    const model = createSparK(c, new Rng(2), { ...CONFIG, hierarchical: false }).train();
    const full = createSparK(c, new Rng(2), { ...CONFIG }).train();
    const names = model.namedParameters().map(([n]) => n);
    expect(names.some((n) => n.startsWith('densify_projs.0.'))).toBe(true);
    expect(names.some((n) => n.startsWith('densify_projs.1.') || n.startsWith('densify_norms.1.'))).toBe(false);
    expect(full.namedParameters().some(([n]) => n.startsWith('densify_projs.1.'))).toBe(true);
    const layout = SiteLayout.dense(B, SIZE, SIZE);
    const loss = await c.tidy(() => {
      const x = c.fromArray(image(4), [layout.rows, 3], layout);
      const out = model.forward(x, A);
      c.zeroGrad(model.parameters());
      c.backward(out.loss);
      return out.loss.read();
    });
    expect(Number.isFinite(loss[0]!)).toBe(true);
    const stem = model.namedParameters().find(([n]) => n === 'sparse_encoder.sp_cnn.conv1.weight')![1];
    const g = await stem.grad!.read();
    expect(g.some((v) => v !== 0)).toBe(true);
  });
});
