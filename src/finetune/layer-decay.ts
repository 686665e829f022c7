/**
 * Layer-wise learning-rate decay: parameters near the input learn slower than those near the
 * head, lr x decay^(depth of the head - depth of the parameter). Depths as the downstream codes
 * assign them:
 *
 * - ResNets: stem (conv1, bn1) 0, layer1..layer4 1..4, fc 5.
 * - ConvNeXt (the official ConvNeXt's stage-wise rule, 12 layers): stem 0, stages 0 and 1 at
 *   1 and 2, the downsample before stage k (k = 1, 2) at k + 1, stage 2's blocks at 3 + j // 3,
 *   stage 3 and its downsample at 12, norm and head at 13.
 */
import type { ModelSpec } from '../models/zoo.ts';

/** The depth of parameter `name` and the head's depth, for `family`. */
export function layerDepth(family: ModelSpec['family'], name: string): { depth: number; head: number } {
  const parts = name.split('.');
  if (family === 'resnet') {
    const m = /^layer(\d)$/.exec(parts[0]!);
    if (m) return { depth: Number(m[1]), head: 5 };
    return { depth: parts[0] === 'fc' ? 5 : 0, head: 5 };
  }
  const head = 13;
  if (parts[0] === 'downsample_layers') {
    const stage = Number(parts[1]);
    return { depth: stage === 0 ? 0 : stage === 3 ? 12 : stage + 1, head };
  }
  if (parts[0] === 'stages') {
    const stage = Number(parts[1]);
    const block = Number(parts[2]);
    return { depth: stage < 2 ? stage + 1 : stage === 2 ? 3 + Math.floor(block / 3) : 12, head };
  }
  return { depth: head, head };
}

/** The lr multiplier of parameter `name`: decay^(head - depth); 1 everywhere with decay 1. */
export function lrScale(family: ModelSpec['family'], name: string, decay: number): number {
  const { depth, head } = layerDepth(family, name);
  return decay ** (head - depth);
}
