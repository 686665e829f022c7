/**
 * Fine-tuning against PyTorch (test/fixtures/finetune/, made by tools/make-finetune-fixture.py
 * with torchvision's own ResNet classes):
 *
 * - The exported classifier of a resnet18 has exactly torchvision's resnet18 state_dict keys,
 *   shapes and dtypes, in order (so `load_state_dict(sd, strict=True)` takes it).
 * - webspark's export of a fine-tuned narrow classifier loads into torchvision's ResNet with
 *   strict=True, and PyTorch's probabilities on three images equal `predict`'s (to 1e-5: both
 *   float32 forwards of ~0.1 M multiply-adds, then a softmax).
 * - One fine-tuning step of a narrow torchvision ResNet equals PyTorch's: the same weights,
 *   images and labels, label smoothing 0.1, BatchNorm on batch statistics, torch.optim.AdamW
 *   with layer-wise lr decay 0.7 and no weight decay on 1-D parameters and biases.
 *
 * Tolerances, both sides in float32: the loss to 1e-5 relative (a mean of 4 log-sum-exps);
 * gradients to 1e-4 of each tensor's largest entry + 1e-3 relative (the engine's GEMM and
 * BatchNorm reductions sum in another order than PyTorch's; the whole-model fixtures measured
 * float32-vs-float64 differences up to 7.5e-5 of a tensor's max for BatchNorm gradients).
 * Updated weights: Adam's first step moves each weight by lr x g / (|g| + eps), about lr x
 * sign(g), so a gradient that is ~0 up to float32 noise may take either sign in either
 * implementation. Where both gradients are equal, or |g| is above 1e-6 and 10x their
 * difference (the sign is settled), the updated weight must match to 1e-6 + 1e-5 relative; elsewhere it may
 * differ by at most 2 lr (either sign) and such weights must be under 1 % of the total.
 * Running statistics match to 1e-5 + 1e-4 relative.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Classifier } from '../../src/finetune/classifier.ts';
import { Finetuner } from '../../src/finetune/finetune.ts';
import { encodeClassifier, readClassifier } from '../../src/finetune/weights.ts';
import { predictImages } from '../../src/finetune/predict.ts';
import { loadSquareRgb } from '../../src/platform/node/images.ts';
import { lrScale } from '../../src/finetune/layer-decay.ts';
import { readSafetensors, toFloat32 } from '../../src/io/safetensors.ts';
import { loadStateDict, readStateDict, type NamedArray } from '../../src/io/state-dict.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { narrowConfig } from './planted.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/finetune/${name}`, import.meta.url));

/** A file's bytes from its parts (header first). */
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe('fine-tuning against PyTorch', () => {
  const getCtx = useContext();

  it('a resnet18 classifier exports exactly torchvision resnet18 state_dict keys, shapes and dtypes', async () => {
    const ctx = getCtx();
    const expected = JSON.parse(readFileSync(fixture('torchvision-resnet18-keys.json'), 'utf8')) as { keys: [string, number[], string][] };
    const model = new Classifier(ctx, new Rng(0), { model: 'resnet18', classes: 10, inputSize: 224 });
    const names = Array.from({ length: 10 }, (_, i) => `class ${i}`);
    const file = readSafetensors(concat(await encodeClassifier(model, names)));
    expect([...file.tensors].map(([k, e]) => [k, [...e.shape], e.dtype])).toEqual(expected.keys);
    expect(JSON.parse(file.metadata['webspark.classes']!)).toEqual(names);
  });

  it('one step matches PyTorch: loss, every gradient, every updated weight and running statistic', async () => {
    const ctx = getCtx();
    const st = readSafetensors(new Uint8Array(readFileSync(fixture('step-resnet.safetensors'))));
    const meta = JSON.parse(st.metadata['webspark.fixture']!) as { lr: number; weight_decay: number; layer_decay: number; label_smoothing: number; classes: number; input_size: number };
    const arr = (k: string) => toFloat32(st.tensors.get(k)!);
    const before = new Map<string, NamedArray>();
    // The weights before the step: every key but the inputs and the grad. / after. entries.
    for (const [k, e] of st.tensors) if (k.includes('.') && !/^(grad|after)\./.test(k)) before.set(k, { shape: e.shape, data: toFloat32(e) });
    const config = { ...narrowConfig(meta.classes), inputSize: meta.input_size };
    const rng = new Rng(0);
    const model = new Classifier(ctx, rng, config);
    loadStateDict(model, before);
    const pixels = Uint8Array.from(arr('pixels'));
    const labels = [...arr('labels')];
    const options = { batchSize: labels.length, totalSteps: 1, warmupSteps: 0, baseLr: 0, weightDecay: meta.weight_decay, layerDecay: meta.layer_decay, labelSmoothing: meta.label_smoothing, seed: 0 };
    const tuner = new Finetuner(ctx, model, rng, { images: pixels, labels: Int32Array.from(labels) }, labels.map((_, i) => i), null, options);
    const loss = await tuner.stepOn(pixels, new Uint8Array(labels.length), labels, meta.lr);
    expectClose([loss], arr('loss'), { atol: 0, rtol: 1e-5 }, 'loss');

    let loose = 0;
    let total = 0;
    for (const [name, p] of model.namedParameters()) {
      const gRef = arr(`grad.${name}`);
      const gTol = 1e-4 * maxAbs(gRef);
      const gGot = await p.grad!.read();
      expectClose(gGot, gRef, { atol: gTol, rtol: 1e-3 }, `grad ${name}`);
      const got = await p.read();
      const want = arr(`after.${name}`);
      const lr = meta.lr * lrScale('resnet', name, meta.layer_decay);
      for (let i = 0; i < want.length; i++) {
        total++;
        const diff = Math.abs(got[i]! - want[i]!);
        // The step is settled when both gradients are equal (the exact zeros of taps that only
        // ever see padding) or |g| is 10x their difference (the same sign, g/|g| ~ the same).
        const settled = gGot[i] === gRef[i] || Math.abs(gRef[i]!) > Math.max(1e-6, 10 * Math.abs(gGot[i]! - gRef[i]!));
        if (settled) {
          if (diff > 1e-6 + 1e-5 * Math.abs(want[i]!)) expect.fail(`after ${name}[${i}]: ${got[i]} vs ${want[i]} (gradient ${gRef[i]})`);
        } else {
          loose++;
          if (diff > 2 * lr * 1.001 + 1e-6) expect.fail(`after ${name}[${i}]: ${got[i]} vs ${want[i]}, more than 2 lr apart`);
        }
      }
    }
    expect(loose / total, `${loose} of ${total} weights with an unsettled gradient sign`).toBeLessThan(0.01);
    const state = await readStateDict(model);
    for (const [k, v] of state) {
      if (!k.includes('running_') && !k.endsWith('num_batches_tracked')) continue;
      expectClose(v.data, arr(`after.${k}`), { atol: 1e-5, rtol: 1e-4 }, `after ${k}`);
    }
  });

  it("predict's probabilities equal PyTorch's on the export loaded strictly into torchvision", async () => {
    const ctx = getCtx();
    const ref = JSON.parse(readFileSync(fixture('predictions.json'), 'utf8')) as { classes: string[]; predictions: { image: string; probs: number[] }[] };
    const path = fixture('exported-classifier.safetensors');
    const file = readClassifier(new Uint8Array(readFileSync(path)), path);
    expect(file.classNames).toEqual(ref.classes);
    const model = new Classifier(ctx, new Rng(0), file.config);
    loadStateDict(model, file.arrays);
    const images = await Promise.all(ref.predictions.map(async (p) => ({ name: p.image, rgb: await loadSquareRgb(fixture(p.image), file.config.inputSize, 0.875) })));
    const got = await predictImages(ctx, model, file.classNames, images);
    ref.predictions.forEach((want, i) => {
      const order = want.probs.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0]).map(([, c]) => c);
      expect(got[i]!.top5.map((t) => t.class), want.image).toEqual(order);
      expectClose(got[i]!.top5.map((t) => t.prob), order.map((c) => want.probs[c]!), { atol: 1e-5, rtol: 0 }, `${want.image} probabilities`);
    });
  });
});
