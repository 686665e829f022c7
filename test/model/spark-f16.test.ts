/**
 * A whole SparK step with f16 activations against the same step in f32: the same weights
 * (built from one seed in an f32 and an f16 Context on one device), image and mask; forward in
 * training mode (batch statistics), the loss, and backward to every parameter.
 *
 * The backward is seeded with a loss scale of 1024 (as a GradScaler would), so gradients stay
 * inside f16's range in both runs; parameter gradients are f32 and compared unscaled-equal.
 *
 * Tolerances (measured, not derived: a whole network compounds the per-kernel bounds of
 * test/ops through BatchNorm/LayerNorm, the mask token and the patch normalisation). Each
 * kernel stores its result with at most one f16 rounding (2^-10 relative) and accumulates in
 * f32. Measured on lavapipe: loss relative difference 1.2e-6 (tiny ResNet) and 6e-8 (narrow
 * ConvNeXt); cosine similarity of all parameter gradients together 0.9951 and 0.9990. The
 * gradients that differ most are sums that cancel almost to zero (a zero-initialised last
 * BatchNorm's neighbours, a downsample BatchNorm weight of norm ~2e-8 at this initialisation):
 * their inputs are f16-rounded, so the absolute error is ~2^-11 of the terms, not of the
 * result. Allowed: 1 % relative on the loss and cosine >= 0.99, well outside what an error in
 * the f16 path gives (a wrong alias or a missing conversion gives garbage or NaN).
 */
import { describe, expect, it } from 'vitest';
import { Context } from '../../src/tensor/context.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { createSparK, type SparKConfig } from '../../src/models/registry.ts';
import { modelFields, TINY_MODEL } from '../../src/models/zoo.ts';
import { Rng as EngineRng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng } from '../helpers/random.ts';
import { needF16 } from '../helpers/f16.ts';

const LOSS_SCALE = 1024;
const MODELS: [string, SparKConfig][] = [
  ['tiny ResNet', { ...modelFields(TINY_MODEL), inputSize: 64, decoderWidth: 32, dropPathRate: 0 }],
  ['narrow ConvNeXt', { model: 'convnext_tiny', convnext: { depths: [1, 1, 2, 1], dims: [8, 16, 24, 32] }, inputSize: 64, decoderWidth: 32, dropPathRate: 0 }],
];

/** Loss and every parameter gradient (by name) of one step in a Context of `precision`. */
async function step(base: Context, precision: 'f32' | 'f16', config: SparKConfig, image: Float32Array) {
  const ctx = new Context(base.gpu, { precision });
  try {
    const model = createSparK(ctx, new EngineRng(5), config);
    const B = 2;
    const layout = SiteLayout.dense(B, config.inputSize, config.inputSize);
    const x = ctx.fromArray(image, [layout.rows, 3], layout);
    const mask = model.randomMask(B, new EngineRng(9));
    const { loss } = model.forward(x, mask);
    expect(loss.dtype).toBe('f32');
    ctx.backward(loss, ctx.fromArray([LOSS_SCALE], [1]));
    const grads = new Map<string, Float32Array>();
    for (const [name, p] of model.namedParameters()) if (p.grad) grads.set(name, await p.grad.read());
    return { loss: (await loss.read())[0]!, grads };
  } finally {
    ctx.dispose();
  }
}

function cosine(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [name, ga] of a) {
    const gb = b.get(name)!;
    for (let i = 0; i < ga.length; i++) {
      dot += ga[i]! * gb[i]!;
      na += ga[i]! * ga[i]!;
      nb += gb[i]! * gb[i]!;
    }
  }
  return dot / Math.sqrt(na * nb);
}

describe('a SparK step in f16 against f32', () => {
  const getCtx = useContext();
  for (const [name, config] of MODELS) {
    it(`${name}: loss within 1 %, parameter gradients with cosine >= 0.99`, async (t) => {
      const base = getCtx();
      needF16(t, base);
      const rng = new Rng(21);
      const image = Float32Array.from(rng.normals(2 * config.inputSize * config.inputSize * 3, 1));
      const full = await step(base, 'f32', config, image);
      const half = await step(base, 'f16', config, image);
      const rel = Math.abs(half.loss - full.loss) / Math.abs(full.loss);
      const cos = cosine(full.grads, half.grads);
      expect(Number.isFinite(half.loss)).toBe(true);
      expect(rel).toBeLessThan(0.01);
      expect(half.grads.size).toBe(full.grads.size);
      expect(cos).toBeGreaterThan(0.99);
    });
  }
});
