import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { createSparK } from '../../src/models/registry.ts';
import { Rng } from '../../src/util/rng.ts';
import { loadLabelledImages } from '../../src/eval/node-data.ts';
import { evaluateEncoder } from '../../src/eval/evaluate.ts';
const ctx = new Context(await createNodeGpu());
const tr0 = await loadLabelledImages('/tmp/fmnist/train-000001.tar', { size: 32, limit: 400 });
const te0 = await loadLabelledImages('/tmp/fmnist/test-000000.tar', { size: 32, limit: 100 });
const m = createSparK(ctx, new Rng(0), { model: 'resnet18', inputSize: 32, zeroInitLastBn: false, resnet: { block: 'basic', layers: [1,1,1,1], stemWidth: 16, planes: [16,32,64,128] } });
for (const protocol of ['linear', 'knn', 'linear'] as const) {
  const r = await evaluateEncoder(ctx, m.encoder, tr0, te0, { protocol, size: 32, linear: { epochs: 30, lr: 1e-2, batchSize: 128, seed: 0 } });
  console.log(protocol, r.accuracy, r.trainAccuracy);
}
