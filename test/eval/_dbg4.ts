import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { createSparK } from '../../src/models/registry.ts';
import { Rng } from '../../src/util/rng.ts';
import { loadLabelledImages } from '../../src/eval/node-data.ts';
import { extractFeatures } from '../../src/eval/features.ts';
import { linearProbe } from '../../src/eval/linear-probe.ts';
const ctx = new Context(await createNodeGpu());
const tr0 = await loadLabelledImages('/tmp/fmnist/train-000001.tar', { size: 32, limit: 1000 });
const te0 = await loadLabelledImages('/tmp/fmnist/test-000000.tar', { size: 32, limit: 300 });
const m = createSparK(ctx, new Rng(0), { model: 'resnet18', inputSize: 32, zeroInitLastBn: false, resnet: { block: 'basic', layers: [1,1,1,1], stemWidth: 16, planes: [16,32,64,128] } });
const tr = await extractFeatures(ctx, m.encoder, tr0.images, tr0.labels, 32);
const te = await extractFeatures(ctx, m.encoder, te0.images, te0.labels, 32);
const counts = new Array(12).fill(0); for (const l of tr.labels) counts[l]++; console.log('train label counts', counts.join(','));
for (const bs of [100, 128]) {
  const r = await linearProbe(ctx, tr, te, { epochs: 30, batchSize: bs, lr: 1e-2 });
  console.log(bs, r.accuracy, r.trainAccuracy, r.losses.slice(0,3).map(v=>v.toFixed(3)), r.losses.at(-1));
}
