/**
 * Synthetic labelled images for fine-tuning tests: noise whose colour says the class (a
 * "planted" signal that survives any crop and flip), and the narrow ResNet they train.
 */
import { Rng } from '../../src/util/rng.ts';
import type { ClassifierConfig } from '../../src/finetune/classifier.ts';

/** Class colours (RGB): well apart, so the signal is strong next to the noise. */
const COLOURS = [
  [200, 50, 50],
  [50, 200, 50],
  [50, 50, 200],
  [200, 200, 50],
] as const;

export const PLANTED_CLASSES = COLOURS.length;

/** n images of size x size: image i has class i mod 4 (balanced), its colour plus uniform noise of +-noise. */
export function plantedImages(n: number, size: number, seed: number, noise = 45): { images: Uint8Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * size * size * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % COLOURS.length;
    labels[i] = c;
    for (let p = 0; p < size * size; p++) {
      for (let ch = 0; ch < 3; ch++) images[(i * size * size + p) * 3 + ch] = COLOURS[c]![ch]! + Math.round(rng.uniform(-noise, noise));
    }
  }
  return { images, labels };
}

/** A narrow ResNet-18-shaped classifier (one block per stage) at 32 px. */
export function narrowConfig(classes: number = PLANTED_CLASSES): ClassifierConfig {
  return { model: 'resnet18', classes, inputSize: 32, resnet: { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 8, planes: [8, 12, 16, 24] } };
}
