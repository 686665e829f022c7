/**
 * Whole-model parity with the official SparK code: the fixtures' models (ResNet-18-,
 * ResNet-50- and ConvNeXt-shaped, 64 and 96 px, narrow decoders), built and run by the
 * official repository's own modules (tools/make-fixtures.py), run here on the GPU with the
 * same weights, input and mask, in inference mode (running statistics) and training mode
 * (batch statistics). Every tensor the fixture stores is compared: encoder features, densify
 * norm outputs, densified maps, every decoder block, the reconstruction, the target's patch
 * mean and std, the per-patch error, the loss, the composite, the gradient of every
 * parameter, every running statistic and `num_batches_tracked`.
 *
 * Tolerances (test/model/measured.ts): 10 x the official code's own float32 error for that
 * tensor (float32 run vs float64 run, manifest `torch_fp32_error`), never below 10 float32
 * ulps of the tensor's largest value.
 */
import { describe, expect, it } from 'vitest';
import { rowsToNchw } from '../../src/tensor/convert.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import type { PatchMask } from '../../src/tensor/layout.ts';
import { patchLossTerms } from '../../src/ops/loss.ts';
import { useContext } from '../helpers/gpu.ts';
import { loadCase, manifest, type FixtureCase } from './fixture.ts';
import type { NamedArray } from '../../src/io/state-dict.ts';
import { expectMeasured, expectScalarMeasured, type ErrorTable } from './measured.ts';

const STRIDES = [4, 8, 16, 32];

type Outputs = Map<string, NamedArray>;

const nchw = async (t: Tensor) => rowsToNchw(await t.read(), t.channels, t.layout!);

async function expectMap(t: Tensor, outputs: Outputs, key: string, err: ErrorTable): Promise<void> {
  const ref = outputs.get(key);
  expect(ref, `${key} missing from the fixture`).toBeDefined();
  expectMeasured(await nchw(t), ref!.data, err, key);
}

async function expectZeroAtMasked(t: Tensor, fx: FixtureCase, what: string): Promise<void> {
  const layout = t.layout!;
  const values = await nchw(t);
  const [h, w] = fx.grid;
  const fy = layout.height / h;
  const fxs = layout.width / w;
  const C = t.channels;
  for (let b = 0; b < layout.batch; b++) {
    for (let y = 0; y < layout.height; y++) {
      for (let x = 0; x < layout.width; x++) {
        if (fx.mask[b]![Math.floor(y / fy) * w + Math.floor(x / fxs)]) continue;
        for (let c = 0; c < C; c++) {
          const v = values[((b * C + c) * layout.height + y) * layout.width + x]!;
          if (v !== 0) expect.fail(`${what}: ${v} at masked site b${b} c${c} (${y},${x})`);
        }
      }
    }
  }
  // And nothing is stored for masked sites: rows = visible patches x sites per patch.
  const visible = fx.mask.flat().reduce((a, v) => a + v, 0);
  expect(layout.rows).toBe(visible * fy * fxs);
}

/**
 * The loss's per-patch terms against the official `mean`, `var` and `l2_loss`: the GPU's
 * patch statistics and its error of each masked patch directly, and the error of every patch
 * (visible ones too, which the loss pass skips) re-derived in float64 from the GPU's
 * reconstruction and statistics.
 */
async function expectPatchTerms(rec: Tensor, image: Tensor, mask: PatchMask, outputs: Outputs, mode: string, err: ErrorTable) {
  const { stats, error } = patchLossTerms(rec, image, mask);
  const [s, e, r, x] = await Promise.all([stats.read(), error.read(), nchw(rec), nchw(image)]);
  const patches = e.length;
  const mean = Float64Array.from({ length: patches }, (_, p) => s[4 * p]! + s[4 * p + 1]!);
  const std = Float64Array.from({ length: patches }, (_, p) => s[4 * p + 2]!);
  if (mode === 'train') {
    expectMeasured(mean, outputs.get('target/mean')!.data, err, 'target/mean');
    expectMeasured(std, outputs.get('target/std')!.data, err, 'target/std');
  }
  const { batch, height: H, width: W } = rec.layout!;
  const ph = mask.h;
  const p = H / ph;
  const derived = new Float64Array(patches);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < ph; i++) {
      for (let j = 0; j < mask.w; j++) {
        const k = (b * ph + i) * mask.w + j;
        let acc = 0;
        for (let c = 0; c < 3; c++) {
          for (let y = i * p; y < (i + 1) * p; y++) {
            for (let xx = j * p; xx < (j + 1) * p; xx++) {
              const at = ((b * 3 + c) * H + y) * W + xx;
              const d = r[at]! - (x[at]! - mean[k]!) / std[k]!;
              acc += d * d;
            }
          }
        }
        derived[k] = acc / (3 * p * p);
      }
    }
  }
  const key = `${mode}/loss_per_patch`;
  const ref = outputs.get(key)!.data;
  expectMeasured(derived, ref, err, key, `${key} (from the GPU's rec and statistics)`);
  const maskedOnly = Float64Array.from(ref, (v, k) => (mask.visible[k] ? 0 : v));
  expectMeasured(e, maskedOnly, err, key, `${key} (the loss pass's own, masked patches)`);
}

describe('SparK parity with the official code (fixtures)', () => {
  const getCtx = useContext();

  for (const name of Object.keys(manifest.fixtures)) {
    const err = (): ErrorTable => manifest.fixtures[name]!.torch_fp32_error;
    const torchLoss = () => manifest.fixtures[name]!.loss_torch_fp32;

    it(`${name}: inference mode (running statistics)`, async () => {
      const ctx = getCtx();
      const { fx, model, mask, image, outputs } = loadCase(ctx, name);
      model.eval();
      const out = ctx.noGrad(() => model.forward(image, mask));
      expectScalarMeasured((await out.loss.read())[0]!, fx.loss.eval, torchLoss().eval, 'loss eval');
      for (let i = 0; i < 4; i++) {
        await expectMap(out.features[i]!, outputs, `eval/feature/s${STRIDES[i]}`, err());
        await expectZeroAtMasked(out.features[i]!, fx, `eval feature s${STRIDES[i]}`);
        await expectMap(out.densified[i]!, outputs, `eval/densified/${i}`, err());
      }
      await expectMap(out.rec, outputs, 'eval/rec', err());
      await expectPatchTerms(out.rec, image, mask, outputs, 'eval', err());
      const vis = model.visualize(image, mask);
      await expectMap(vis.composite, outputs, 'eval/vis/rec_or_inp', err());
      ctx.dispose();
    });

    it(`${name}: training mode (batch statistics), every tap, gradient and running statistic`, async () => {
      const ctx = getCtx();
      const { fx, model, mask, image, outputs } = loadCase(ctx, name);
      model.train();
      const out = model.forward(image, mask);
      ctx.backward(out.loss);
      expectScalarMeasured((await out.loss.read())[0]!, fx.loss.train, torchLoss().train, 'loss train');
      for (let i = 0; i < 4; i++) {
        await expectMap(out.features[i]!, outputs, `train/feature/s${STRIDES[i]}`, err());
        await expectZeroAtMasked(out.features[i]!, fx, `train feature s${STRIDES[i]}`);
        await expectMap(out.normed[i]!, outputs, `train/normed/${i}`, err());
        await expectZeroAtMasked(out.normed[i]!, fx, `train normed ${i}`);
        await expectMap(out.densified[i]!, outputs, `train/densified/${i}`, err());
      }
      expect(out.decoded.length).toBe(5);
      for (let i = 0; i < out.decoded.length; i++) await expectMap(out.decoded[i]!, outputs, `train/decoder/${i}`, err());
      await expectMap(out.rec, outputs, 'train/rec', err());
      await expectPatchTerms(out.rec, image, mask, outputs, 'train', err());
      let checked = 0;
      for (const [key, p] of model.namedParameters()) {
        const ref = outputs.get(`train/grad/${key}`);
        expect(ref, `no reference gradient for ${key}`).toBeDefined();
        expect(p.grad, `no gradient reached ${key}`).not.toBeNull();
        expectMeasured(await p.grad!.read(), ref!.data, err(), `train/grad/${key}`);
        checked++;
      }
      expect(checked).toBe(model.namedParameters().length);
      let buffers = 0;
      for (const [key, v] of model.stateDict()) {
        if (!/running_|num_batches_tracked/.test(key)) continue;
        const ref = outputs.get(`train/running/${key}`);
        expect(ref, `no reference running statistic ${key}`).toBeDefined();
        if (v.kind === 'int') expect(v.get(), key).toBe(ref!.data[0]);
        else expectMeasured(await v.tensor.read(), ref!.data, err(), `train/running/${key}`);
        buffers++;
      }
      expect(buffers).toBe([...outputs.keys()].filter((k) => k.startsWith('train/running/')).length);
      ctx.dispose();
    });
  }
});
