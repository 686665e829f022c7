/**
 * The CPU parts of fine-tuning: the label fraction (class-balanced, seeded), the epoch order,
 * the crop-and-resize of the augmentation, layer-wise lr decay depths, top-k read-outs and the
 * comparison's summary.
 */
import { describe, expect, it } from 'vitest';
import { epochOrder, labelFraction } from '../../src/finetune/sampling.ts';
import { augmentBatch, cropResize } from '../../src/finetune/augment.ts';
import { layerDepth, lrScale } from '../../src/finetune/layer-decay.ts';
import { accuracyOf, softmaxRows, topClasses } from '../../src/finetune/metrics.ts';
import { gain, summarize } from '../../src/finetune/summary.ts';

/** Unbalanced labels: class c has 10 * (c + 1) + c images, interleaved. */
function unbalancedLabels(): Int32Array {
  const out: number[] = [];
  for (let c = 0; c < 5; c++) for (let k = 0; k < 10 * (c + 1) + c; k++) out.push(c);
  // A fixed interleaving, so class members are not contiguous.
  return Int32Array.from(out.map((c, i) => [c, (i * 7919) % out.length] as const).sort((a, b) => a[1] - b[1]).map(([c]) => c));
}

function countByClass(labels: Int32Array, picks: number[]): number[] {
  const counts = [0, 0, 0, 0, 0];
  for (const i of picks) counts[labels[i]!]!++;
  return counts;
}

describe('labelFraction', () => {
  const labels = unbalancedLabels();
  const perClass = [10, 21, 32, 43, 54];

  it('keeps round(f x count) of every class (at least one), so the class balance is kept', () => {
    for (const f of [0.01, 0.1, 0.5, 1]) {
      const picks = labelFraction(labels, f, 3);
      expect(countByClass(labels, picks)).toEqual(perClass.map((n) => Math.max(1, Math.round(f * n))));
      expect(new Set(picks).size).toBe(picks.length);
      expect([...picks].sort((a, b) => a - b)).toEqual(picks);
    }
  });

  it('is reproducible from the seed, and another seed picks other images', () => {
    expect(labelFraction(labels, 0.1, 7)).toEqual(labelFraction(labels, 0.1, 7));
    expect(labelFraction(labels, 0.1, 7)).not.toEqual(labelFraction(labels, 0.1, 8));
  });

  it('picks within a class do not depend on the other classes (adding a class changes nothing else)', () => {
    const more = Int32Array.from([...labels, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
    const a = labelFraction(labels, 0.3, 1);
    const b = labelFraction(more, 0.3, 1).filter((i) => i < labels.length);
    expect(b).toEqual(a);
  });

  it('rejects fractions outside (0, 1]', () => {
    expect(() => labelFraction(labels, 0, 1)).toThrow(/--label-fraction must be in \(0, 1\]/);
    expect(() => labelFraction(labels, 1.5, 1)).toThrow(/--label-fraction/);
  });
});

describe('epochOrder', () => {
  it('is a permutation that depends on seed and epoch', () => {
    const a = epochOrder(50, 1, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 1, 0)).toEqual(a);
    expect(epochOrder(50, 1, 1)).not.toEqual(a);
    expect(epochOrder(50, 2, 0)).not.toEqual(a);
  });
});

describe('augmentation', () => {
  const size = 8;
  const image = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256);

  it('cropResize of the whole image at its own size is the identity', () => {
    const out = new Uint8Array(image.length);
    cropResize(image, size, { top: 0, left: 0, height: size, width: size }, size, out);
    expect(out).toEqual(image);
  });

  it('cropResize of a 2x2 box to 4x4 interpolates bilinearly with half-pixel centres', () => {
    // A 2x2 grey image [[0, 100], [200, 40]] at (top 0, left 0) of a 2x2 source.
    const src = Uint8Array.from([0, 100, 200, 40].flatMap((v) => [v, v, v]));
    const out = new Uint8Array(4 * 4 * 3);
    cropResize(src, 2, { top: 0, left: 0, height: 2, width: 2 }, 4, out);
    const grey = Array.from({ length: 16 }, (_, i) => out[i * 3]!);
    // Source coordinates -0.25, 0.25, 0.75, 1.25 clamp to 0, 0.25, 0.75, 1.
    const lerp = (a: number, b: number, t: number) => a + (b - a) * t;
    const t = [0, 0.25, 0.75, 1];
    const expected = t.flatMap((ty) => t.map((tx) => Math.round(lerp(lerp(0, 100, tx), lerp(200, 40, tx), ty))));
    expect(grey).toEqual(expected);
  });

  it('augmentBatch is a function of (seed, epoch, place): same draws again, others for another epoch', () => {
    const images = new Uint8Array(3 * image.length);
    for (let k = 0; k < 3; k++) images.set(image.map((v) => (v + 50 * k) % 256), k * image.length);
    const a = augmentBatch(images, size, [2, 0, 1], 5, 0, 4);
    expect(augmentBatch(images, size, [2, 0, 1], 5, 0, 4)).toEqual(a);
    expect(augmentBatch(images, size, [2, 0, 1], 5, 1, 4).pixels).not.toEqual(a.pixels);
  });
});

describe('layer-wise lr decay', () => {
  it('ResNet: stem 0, layerN N, fc 5', () => {
    expect(layerDepth('resnet', 'conv1.weight').depth).toBe(0);
    expect(layerDepth('resnet', 'bn1.bias').depth).toBe(0);
    expect(layerDepth('resnet', 'layer3.1.conv2.weight').depth).toBe(3);
    expect(layerDepth('resnet', 'fc.weight').depth).toBe(5);
    expect(lrScale('resnet', 'fc.bias', 0.5)).toBe(1);
    expect(lrScale('resnet', 'layer4.0.bn1.weight', 0.5)).toBe(0.5);
    expect(lrScale('resnet', 'conv1.weight', 0.5)).toBe(0.5 ** 5);
  });

  it('ConvNeXt: the official stage-wise depths (12 layers, head 13)', () => {
    const d = (n: string) => layerDepth('convnext', n).depth;
    expect(d('downsample_layers.0.0.weight')).toBe(0);
    expect(d('stages.0.1.dwconv.weight')).toBe(1);
    expect(d('downsample_layers.1.1.weight')).toBe(2);
    expect(d('stages.1.0.gamma')).toBe(2);
    expect(d('downsample_layers.2.0.bias')).toBe(3);
    expect(d('stages.2.0.norm.weight')).toBe(3);
    expect(d('stages.2.8.pwconv1.weight')).toBe(5);
    expect(d('downsample_layers.3.1.weight')).toBe(12);
    expect(d('stages.3.2.pwconv2.bias')).toBe(12);
    expect(d('norm.weight')).toBe(13);
    expect(d('head.weight')).toBe(13);
    expect(lrScale('convnext', 'stages.3.0.gamma', 0.9)).toBeCloseTo(0.9, 12);
  });
});

describe('read-outs', () => {
  it('top-1 / top-5 and the cross-entropy of logits', () => {
    // 3 rows, 6 classes: row 0 right at top-1, row 1 label 5th best, row 2 label 6th best.
    const logits = Float32Array.from([
      5, 1, 0, 0, 0, 0,
      6, 5, 4, 3, 2, 1,
      6, 5, 4, 3, 2, 1,
    ]);
    const a = accuracyOf(logits, [0, 4, 5], 6);
    expect(a.top1).toBe(1);
    expect(a.top5).toBe(2);
    const p = softmaxRows(logits, 6);
    expect(a.lossSum).toBeCloseTo(-Math.log(p[0]!) - Math.log(p[6 + 4]!) - Math.log(p[12 + 5]!), 10);
    expect(topClasses(Float32Array.from([1, 3, 3, 2]), 4, 0, 5)).toEqual([1, 2, 3, 0]);
  });
});

describe('the comparison summary', () => {
  it('mean and standard error per (init, fraction), and the standard error of a gain', () => {
    const rows = [
      { init: 'spark', fraction: 0.1, seed: 0, top1: 0.7 },
      { init: 'spark', fraction: 0.1, seed: 1, top1: 0.8 },
      { init: 'random', fraction: 0.1, seed: 0, top1: 0.6 },
      { init: 'random', fraction: 0.1, seed: 1, top1: 0.6 },
      { init: 'random', fraction: 1, seed: 0, top1: 0.9 },
    ];
    const cells = summarize(rows);
    const spark = cells.find((c) => c.init === 'spark')!;
    expect(spark.runs).toBe(2);
    expect(spark.mean).toBeCloseTo(0.75, 12);
    // sample sd of {0.7, 0.8} = 0.0707...; / sqrt(2) = 0.05
    expect(spark.se).toBeCloseTo(0.05, 12);
    const random = cells.find((c) => c.init === 'random' && c.fraction === 0.1)!;
    expect(random.se).toBe(0);
    expect(gain(spark, random)).toEqual({ diff: expect.closeTo(0.15, 12), se: expect.closeTo(0.05, 12) });
    expect(Number.isNaN(cells.find((c) => c.fraction === 1)!.se)).toBe(true);
  });
});
