/**
 * Full-size models carry exactly the official state-dict keys and shapes: SparK ResNet-50 and
 * SparK ConvNeXt-S at 224 px with the default decoder (768), against the lists the fixture
 * script took from PyTorch (ResNet-50 cross-checked with torchvision). A checkpoint therefore
 * moves between webspark and the official code with no renaming table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSparK } from '../../src/models/registry.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';

type Entry = [string, number[], string];
const keys = (model: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/model/keys-${model}.json`, import.meta.url), 'utf8')) as { spark: Entry[]; encoder: Entry[] };

describe('official state-dict keys', () => {
  const getCtx = useContext();

  for (const model of ['resnet50', 'convnext_small']) {
    it(`SparK ${model} @224, decoder 768: keys, order and shapes`, () => {
      const ctx = getCtx();
      const spark = createSparK(ctx, new Rng(0), { model, inputSize: 224 });
      const ours = [...spark.stateDict()].map(([k, v]): Entry => [
        k,
        v.kind === 'tensor' ? [...v.tensor.shape] : [],
        v.kind === 'tensor' ? 'F32' : 'I64',
      ]);
      const official = keys(model).spark;
      expect(new Set(ours.map((e) => e[0]))).toEqual(new Set(official.map((e) => e[0])));
      const shapeOf = new Map(official.map((e) => [e[0], e[1]]));
      for (const [k, shape, dtype] of ours) {
        expect(shape, k).toEqual(shapeOf.get(k));
        expect(dtype, k).toBe(official.find((e) => e[0] === k)![2]);
      }
      const encoder = ours.filter((e) => e[0].startsWith('sparse_encoder.sp_cnn.')).map((e) => e[0].slice('sparse_encoder.sp_cnn.'.length));
      expect(encoder).toEqual(keys(model).encoder.map((e) => e[0]));
      ctx.dispose();
    });
  }
});
