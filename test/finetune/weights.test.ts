/**
 * Where a classifier's encoder comes from: a SparK checkpoint (keys under
 * `sparse_encoder.sp_cnn.`), an exported encoder (timm-style keys, no head), or a classifier
 * file (its head ignored); and the ConvNeXt classifier (official `norm` + `head`) trains.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Classifier } from '../../src/finetune/classifier.ts';
import { Finetuner } from '../../src/finetune/finetune.ts';
import { encoderArrays, loadEncoderWeights } from '../../src/finetune/weights.ts';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { exportEncoder } from '../../src/io/export.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';
import { narrowConfig, plantedImages } from './planted.ts';

const sparkPath = fileURLToPath(new URL('../fixtures/model/resnet18s.weights.safetensors', import.meta.url));

describe('classifier weights', () => {
  const getCtx = useContext();
  const spark = readWeightFile(new Uint8Array(readFileSync(sparkPath)), sparkPath);

  it('takes the encoder from a SparK checkpoint and from its exported encoder alike', async () => {
    const ctx = getCtx();
    const exported = readWeightFile(new Uint8Array(Buffer.concat(exportEncoder(spark.arrays, 'resnet18'))), 'encoder.safetensors');
    const fromSpark = new Classifier(ctx, new Rng(1), narrowConfig());
    const fromExport = new Classifier(ctx, new Rng(2), narrowConfig());
    expect(loadEncoderWeights(fromSpark, spark.arrays, 'spark')).toBe(loadEncoderWeights(fromExport, exported.arrays, 'export'));
    for (const key of ['conv1.weight', 'layer4.0.bn2.running_var', 'layer3.0.downsample.0.weight']) {
      const a = await (fromSpark.stateDict().get(key) as { tensor: { read(): Promise<Float32Array> } }).tensor.read();
      const b = await (fromExport.stateDict().get(key) as { tensor: { read(): Promise<Float32Array> } }).tensor.read();
      expect(a, key).toEqual(spark.arrays.get(`sparse_encoder.sp_cnn.${key}`)!.data);
      expect(b, key).toEqual(a);
    }
  });

  it('ignores a head and optimizer state in the file, and names the file when the encoder does not fit', () => {
    const ctx = getCtx();
    const timm = encoderArrays(spark.arrays, ['fc.']);
    const withHead = new Map([...timm, ['fc.weight', { shape: [7, 24], data: new Float32Array(168) }], ['optimizer.fc.weight.exp_avg', { shape: [7, 24], data: new Float32Array(168) }]]);
    expect([...encoderArrays(withHead, ['fc.']).keys()]).toEqual([...timm.keys()]);
    const wide = new Classifier(ctx, new Rng(1), { model: 'resnet18', classes: 4, inputSize: 32 });
    expect(() => loadEncoderWeights(wide, spark.arrays, 'narrow.safetensors')).toThrow(/^narrow\.safetensors: conv1\.weight: the file has shape \[8,3,7,7\], the model expects \[64,3,7,7\]/);
  });

  it('a ConvNeXt classifier has the official norm + head and trains (finite loss, gradients down to the stem)', async () => {
    const ctx = getCtx();
    const rng = new Rng(4);
    const model = new Classifier(ctx, rng, { model: 'convnext_atto', classes: 3, inputSize: 32, convnext: { depths: [1, 1, 2, 1], dims: [8, 8, 16, 16] } });
    const keys = [...model.stateDict().keys()];
    expect(keys.slice(-4)).toEqual(['norm.weight', 'norm.bias', 'head.weight', 'head.bias']);
    expect(model.headPrefixes).toEqual(['norm.', 'head.']);
    const data = plantedImages(8, 32, 5);
    const labels = Int32Array.from(data.labels, (l) => l % 3);
    const options = { batchSize: 4, totalSteps: 1, warmupSteps: 0, baseLr: 0.1, weightDecay: 0.05, layerDecay: 0.8, labelSmoothing: 0.1, seed: 0 };
    const tuner = new Finetuner(ctx, model, rng, { images: data.images, labels }, [0, 1, 2, 3, 4, 5, 6, 7], null, options);
    expect(tuner.lrScales.length).toBe(6); // depths 0, 1, 2, 3, 12 and the head (13)
    const loss = await tuner.stepOn(data.images.subarray(0, 4 * 32 * 32 * 3), new Uint8Array(4), [...labels.subarray(0, 4)], 1e-3);
    expect(Number.isFinite(loss) && loss > 0).toBe(true);
    const stem = model.namedParameters().find(([n]) => n === 'downsample_layers.0.0.weight')![1];
    const g = await stem.grad!.read();
    expect(g.some((v) => v !== 0) && g.every(Number.isFinite)).toBe(true);
  });
});
