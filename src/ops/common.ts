/** Small helpers every op module uses. */
import type { Tensor } from '../tensor/tensor.ts';

/** True when an op on `inputs` must be recorded: grad mode is on and some input needs a gradient. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  const first = inputs.find((t) => t);
  if (!first || !first.ctx.gradEnabled) return false;
  return inputs.some((t) => t?.requiresGrad);
}

/** Marks `y` as requiring a gradient if any input does (call before recording). */
export function markGrad<T extends Tensor>(y: T, ...inputs: (Tensor | null | undefined)[]): T {
  y.requiresGrad = needsGrad(...inputs);
  return y;
}
