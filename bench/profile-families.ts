/**
 * Kernel families of a profiled training step (`webspark bench train --profile`): which family a
 * dispatch belongs to, from its pipeline (shader file, entry point, override constants: the
 * `shader:entry:constants` key) and the op notes the code around it left (`Gpu.noting`: which
 * conv pass, a transposed conv). The one place that mapping lives; test/bench/profile-families
 * checks that every pipeline of a SparK step maps to a family other than 'other'.
 */
import type { DispatchNote } from '../src/gpu/gpu.ts';

export const FAMILIES = [
  'conv forward',
  'conv input-grad',
  'conv weight-grad',
  'transposed conv',
  'BatchNorm',
  'LayerNorm',
  'elementwise',
  'densify/mask',
  'loss',
  'optimizer (LAMB)',
  'reductions',
  'pooling',
  'copies/data upload',
  'other',
] as const;

export type Family = (typeof FAMILIES)[number];

/**
 * How a family's throughput is stated: GFLOP/s from the launch geometry (conv and GEMM
 * families), or GB/s from the bytes its bindings span (memory-bound families; an estimate).
 */
export function familyMeasure(f: Family): 'flops' | 'bytes' {
  return f === 'conv forward' || f === 'conv input-grad' || f === 'conv weight-grad' || f === 'transposed conv' ? 'flops' : 'bytes';
}

/** Conv pass notes (src/ops/conv-launch.ts, src/ops/depthwise.ts) by tag. */
const CONV_NOTES: Record<string, Family> = {
  'conv.fwd': 'conv forward',
  'conv.dx': 'conv input-grad',
  'conv.dw': 'conv weight-grad',
  'depthwise.forward': 'conv forward',
  'depthwise.backward_input': 'conv input-grad',
  'depthwise.backward_weight': 'conv weight-grad',
};

/** Families of whole shader files (shaders/<file>.wgsl), when no note says more. */
const SHADER_FAMILIES: Record<string, Family> = {
  batchnorm: 'BatchNorm',
  layernorm: 'LayerNorm',
  elementwise: 'elementwise',
  // ConvNeXt's layer scale and drop path: per-channel and per-image scalings.
  channel: 'elementwise',
  augment: 'elementwise',
  'augment-texture': 'elementwise',
  sparse: 'densify/mask',
  loss: 'loss',
  'cross-entropy': 'loss',
  lamb: 'optimizer (LAMB)',
  // The gradients' global norm and the loss scaler's state, read by LAMB.
  'grad-state': 'optimizer (LAMB)',
  reduce: 'reductions',
  chunks: 'reductions',
  segmented: 'reductions',
  'global-pool': 'reductions',
  pool: 'pooling',
};

/** The GEMM's PASS constant (src/ops/conv-plan.ts), for a conv launch without a note. */
const GEMM_PASS: Record<string, Family> = { 'PASS=0': 'conv forward', 'PASS=1': 'conv input-grad', 'PASS=2': 'conv weight-grad' };

/** The family of a dispatch of pipeline `label` (`shader:entry:constants`) made inside `notes` (outermost first). */
export function familyOf(label: string, notes: readonly DispatchNote[] = []): Family {
  if (notes.some((n) => n.tag === 'convTranspose2d')) return 'transposed conv';
  for (let i = notes.length - 1; i >= 0; i--) {
    const f = CONV_NOTES[notes[i]!.tag];
    if (f) return f;
  }
  const [shader = '', entry = '', constants = ''] = label.split(':');
  if (shader === 'conv-direct') return 'conv input-grad';
  if (shader === 'conv2d' && entry === 'gemm') return GEMM_PASS[constants.split(',').find((c) => c.startsWith('PASS=')) ?? ''] ?? 'other';
  if (shader === 'depthwise') return CONV_NOTES[`depthwise.${entry}`] ?? 'other';
  return SHADER_FAMILIES[shader] ?? 'other';
}

/** The innermost note that states FLOPs (the op call whose work the dispatch is part of), or null. */
export function workNote(notes: readonly DispatchNote[]): DispatchNote | null {
  for (let i = notes.length - 1; i >= 0; i--) if (notes[i]!.flops !== undefined) return notes[i]!;
  return null;
}
