/**
 * Writes the webspark half of the export fixture (test/fixtures/finetune/): a narrow ResNet-18
 * classifier (stem 8, widths 8/12/16/24, one block per stage, 4 classes, 64 px) fine-tuned for
 * 4 steps on colour-noise images, exported by `encodeClassifier` exactly as `finetune --out`
 * writes it, and three 64-px PNGs. tools/make-finetune-fixture.py then loads the export into
 * torchvision's ResNet with strict=True and records PyTorch's predictions on the PNGs.
 *
 *   node --import tsx tools/make-finetune-export.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createNodeGpu } from '../src/platform/node/gpu.ts';
import { Context } from '../src/tensor/context.ts';
import { Rng } from '../src/util/rng.ts';
import { Classifier } from '../src/finetune/classifier.ts';
import { Finetuner } from '../src/finetune/finetune.ts';
import { encodeClassifier } from '../src/finetune/weights.ts';

const OUT = fileURLToPath(new URL('../test/fixtures/finetune/', import.meta.url));
const SIZE = 64;
const NAMES = ['red', 'green', 'blue', 'grey'];
const COLOURS = [[190, 60, 60], [60, 190, 60], [60, 60, 190], [128, 128, 128]];

function images(n: number, seed: number): { images: Uint8Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const out = new Uint8Array(n * SIZE * SIZE * 3);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < SIZE * SIZE; p++) {
      for (let c = 0; c < 3; c++) out[(i * SIZE * SIZE + p) * 3 + c] = COLOURS[labels[i]!]![c]! + Math.round(rng.uniform(-60, 60));
    }
  }
  return { images: out, labels };
}

const gpu = await createNodeGpu();
const ctx = new Context(gpu);
const rng = new Rng(21);
const model = new Classifier(ctx, rng, {
  model: 'resnet18',
  classes: 4,
  inputSize: SIZE,
  resnet: { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 8, planes: [8, 12, 16, 24] },
});
const train = images(16, 1);
const options = { batchSize: 8, totalSteps: 4, warmupSteps: 1, baseLr: 0.1, weightDecay: 0.05, layerDecay: 0.7, labelSmoothing: 0.1, seed: 3 };
await new Finetuner(ctx, model, rng, train, Array.from({ length: 16 }, (_, i) => i), null, options).run();
writeFileSync(`${OUT}exported-classifier.safetensors`, Buffer.concat(await encodeClassifier(model, NAMES)));
const test = images(3, 2);
const per = SIZE * SIZE * 3;
for (let i = 0; i < 3; i++) {
  await sharp(Buffer.from(test.images.subarray(i * per, (i + 1) * per)), { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toFile(`${OUT}image-${i}.png`);
}
ctx.dispose();
gpu.destroy();
process.stdout.write(`wrote ${OUT}exported-classifier.safetensors and 3 images\n`);
