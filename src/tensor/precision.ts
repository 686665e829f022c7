/**
 * The precision policy: the one place that decides which tensors are stored in f16.
 *
 * Under `precision: 'f16'` activations and activation gradients (what ops compute from the
 * model's input) are stored as f16, halving their memory and traffic; every kernel still
 * accumulates in f32. Parameters, their gradients, optimizer state, BatchNorm running and batch
 * statistics, the loss and index tables stay f32: they are either summed over many steps
 * (where f16's 11-bit significand would lose small updates), written to checkpoints in the
 * official format, or integers. Ops never choose a dtype themselves: an activation they make
 * takes `activationDtype(ctx)` (`Context.activation`), a gradient takes its tensor's dtype.
 */
import type { Gpu } from '../gpu/gpu.ts';

/** The storage type of a tensor's elements. */
export type DType = 'f32' | 'f16';

/** A Context's precision: the dtype its activations and their gradients are stored in. */
export type Precision = 'f32' | 'f16';

export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2 };

/** Bytes a buffer of `size` elements of `dtype` takes: rounded up to whole 4-byte words. */
export function storageBytes(size: number, dtype: DType): number {
  return Math.ceil((Math.max(size, 1) * DTYPE_BYTES[dtype]) / 4) * 4;
}

/** Whether `gpu`'s device can run the f16 kernels (WGSL `enable f16;` needs `shader-f16`). */
export function supportsF16(gpu: Gpu): boolean {
  return gpu.features.has('shader-f16');
}

/** Refuses a precision the device cannot run, naming the adapter and the way out. */
export function checkPrecision(gpu: Gpu, precision: Precision): void {
  if (!PRECISIONS.includes(precision)) {
    throw new Error(`precision must be one of ${PRECISIONS.join(', ')}, got '${String(precision)}'`);
  }
  if (precision === 'f16' && !supportsF16(gpu)) {
    const a = gpu.adapter;
    const name = [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(' ') || 'this adapter';
    throw new Error(
      `precision f16 needs the WebGPU feature 'shader-f16', which the adapter (${name}) does not offer; ` +
        'train in f32 instead (--precision f32)',
    );
  }
}
