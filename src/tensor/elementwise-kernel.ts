/**
 * The launcher of shaders/elementwise.wgsl. It sits in the tensor layer because backward itself
 * needs three of its entry points (a sum of two gradients, += into a parameter's gradient, a
 * seed of ones; Context.backward), and the tensor layer imports nothing from the ops above it.
 * The elementwise ops (src/ops/elementwise.ts) launch every entry point through it.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { DType } from './precision.ts';

/** Invocations per workgroup (the shader's WG). */
const WG = 256;

/**
 * Launches `entry` with one thread per element of `y` (n of them); `alpha` is its scalar;
 * `act` is the dtype a, b and y are stored in (the shader's `act` alias).
 */
export function runElementwise(
  gpu: Gpu,
  entry: string,
  n: number,
  buffers: { a?: GPUBuffer; b?: GPUBuffer; wide?: GPUBuffer; y?: GPUBuffer; wide_out?: GPUBuffer },
  alpha = 0,
  act: DType = 'f32',
): void {
  gpu.dispatch(gpu.pipeline('elementwise', entry, {}, { act }), buffers, { n, alpha }, gpu.grid(Math.ceil(n / WG)));
}
