/**
 * Whole-model parity with PyTorch: the fixtures' SparK models (ResNet-18-, ResNet-50- and
 * ConvNeXt-shaped, 64 and 96 px, narrow decoders) run on the GPU with the fixtures' weights,
 * input and mask, in inference mode (running statistics) and training mode (batch statistics),
 * and every output is compared with the float64 PyTorch values.
 *
 * Tolerances: the reference is float64; we compute in float32 through ~20 layers. PyTorch's own
 * float32 run differs from float64 by up to ~1e-5 of each tensor's magnitude (manifest
 * torch_fp32_error). We allow 2e-4 of the tensor's largest magnitude for activations and 1e-3
 * for gradients (backward through BatchNorm divides by small batch variances, which amplifies
 * rounding), and 1e-4 relative for the loss, the bound.
 */
import { describe, expect, it } from 'vitest';
import { rowsToNchw } from '../../src/tensor/convert.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { loadCase, manifest, type FixtureCase } from './fixture.ts';
import type { NamedArray } from '../../src/io/state-dict.ts';

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

async function expectMap(t: Tensor, ref: NamedArray | undefined, rel: number, what: string): Promise<void> {
  expect(ref, `${what} missing from the fixture`).toBeDefined();
  const got = rowsToNchw(await t.read(), t.channels, t.layout!);
  expectClose(got, ref!.data, { atol: rel * maxAbs(ref!.data), rtol: 0 }, what);
}

async function expectZeroAtMasked(t: Tensor, fx: FixtureCase, what: string): Promise<void> {
  const layout = t.layout!;
  const nchw = rowsToNchw(await t.read(), t.channels, layout);
  const [h, w] = fx.grid;
  const fy = layout.height / h;
  const fxs = layout.width / w;
  const C = t.channels;
  for (let b = 0; b < layout.batch; b++) {
    for (let y = 0; y < layout.height; y++) {
      for (let x = 0; x < layout.width; x++) {
        if (fx.mask[b]![Math.floor(y / fy) * w + Math.floor(x / fxs)]) continue;
        for (let c = 0; c < C; c++) {
          const v = nchw[((b * C + c) * layout.height + y) * layout.width + x]!;
          if (v !== 0) expect.fail(`${what}: ${v} at masked site b${b} c${c} (${y},${x})`);
        }
      }
    }
  }
  // And nothing is stored for masked sites: rows = visible patches x sites per patch.
  const visible = fx.mask.flat().reduce((a, v) => a + v, 0);
  expect(layout.rows).toBe(visible * fy * fxs);
}

describe('SparK parity with the PyTorch fixtures', () => {
  const getCtx = useContext();

  for (const name of Object.keys(manifest.fixtures)) {
    it(`${name}: inference mode (running statistics)`, async () => {
      const ctx = getCtx();
      const { fx, model, mask, image, outputs } = loadCase(ctx, name);
      model.eval();
      const out = ctx.noGrad(() => model.forward(image, mask));
      const loss = (await out.loss.read())[0]!;
      expect(Math.abs(loss - fx.loss.eval) / fx.loss.eval).toBeLessThan(1e-4);
      const strides = [4, 8, 16, 32];
      for (let i = 0; i < 4; i++) {
        await expectMap(out.features[i]!, outputs.get(`eval/feature/s${strides[i]}`), 2e-4, `eval feature s${strides[i]}`);
        await expectZeroAtMasked(out.features[i]!, fx, `eval feature s${strides[i]}`);
        await expectMap(out.densified[i]!, outputs.get(`eval/densified/${i}`), 2e-4, `eval densified ${i}`);
      }
      await expectMap(out.rec, outputs.get('eval/rec'), 2e-4, 'eval rec');
      const vis = model.visualize(image, mask);
      await expectMap(vis.composite, outputs.get('eval/vis/rec_or_inp'), 2e-4, 'eval composite');
      ctx.dispose();
    });

    it(`${name}: training mode (batch statistics), gradients of every parameter`, async () => {
      const ctx = getCtx();
      const { fx, model, mask, image, outputs } = loadCase(ctx, name);
      model.train();
      const out = model.forward(image, mask);
      ctx.backward(out.loss);
      const loss = (await out.loss.read())[0]!;
      expect(Math.abs(loss - fx.loss.train) / fx.loss.train).toBeLessThan(1e-4);
      const strides = [4, 8, 16, 32];
      for (let i = 0; i < 4; i++) {
        await expectMap(out.features[i]!, outputs.get(`train/feature/s${strides[i]}`), 2e-4, `train feature s${strides[i]}`);
        await expectZeroAtMasked(out.features[i]!, fx, `train feature s${strides[i]}`);
      }
      await expectMap(out.rec, outputs.get('train/rec'), 2e-4, 'train rec');
      let checked = 0;
      for (const [key, p] of model.namedParameters()) {
        const ref = outputs.get(`train/grad/${key}`);
        expect(ref, `no reference gradient for ${key}`).toBeDefined();
        expect(p.grad, `no gradient reached ${key}`).not.toBeNull();
        const g = await p.grad!.read();
        expectClose(g, ref!.data, { atol: 1e-3 * Math.max(maxAbs(ref!.data), 1e-6), rtol: 1e-3 }, `grad ${key}`);
        checked++;
      }
      expect(checked).toBe(model.namedParameters().length);
      for (const [key, v] of model.stateDict()) {
        if (!key.includes('running_')) continue;
        const ref = outputs.get(`train/running/${key}`)!;
        expect(ref, `no reference running stat ${key}`).toBeDefined();
        if (v.kind !== 'tensor') continue;
        expectClose(await v.tensor.read(), ref.data, { atol: 1e-5, rtol: 1e-4 }, `running ${key}`);
      }
      ctx.dispose();
    });
  }
});
