/**
 * Weight initialisers, as the official code and timm 0.5.4 use them. Each returns the values
 * for a tensor of `shape` in PyTorch layout (OIHW for conv, [out, in] for linear).
 */
import type { Rng } from '../util/rng.ts';

export type Init = (rng: Rng, shape: readonly number[]) => Float32Array;

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
/** Receptive field size: product of the dims after the first two (1 for linear). */
const field = (shape: readonly number[]) => count(shape.slice(2));

function fill(shape: readonly number[], f: () => number): Float32Array {
  const out = new Float32Array(count(shape));
  for (let i = 0; i < out.length; i++) out[i] = f();
  return out;
}

export const zeros: Init = (_rng, shape) => new Float32Array(count(shape));
export const ones: Init = (_rng, shape) => new Float32Array(count(shape)).fill(1);
export const constant =
  (v: number): Init =>
  (_rng, shape) =>
    new Float32Array(count(shape)).fill(v);

/**
 * kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (dim0 * field)).
 * PyTorch's fan_out is dim 0 times the field for every weight, so for a ConvTranspose2d
 * ([in, out, kh, kw]) it is in*kh*kw, which is what SparK's decoder init gets.
 */
export const kaimingNormalFanOut: Init = (rng, shape) => {
  const std = Math.sqrt(2 / (shape[0]! * field(shape)));
  return fill(shape, () => rng.normal() * std);
};

/** timm's trunc_normal_(std, a=-2, b=2): bounds are absolute, so for std .02 nothing is cut. */
export const truncNormal =
  (std: number, lo = -2, hi = 2): Init =>
  (rng, shape) =>
    fill(shape, () => rng.truncatedNormal(std, lo, hi));

/**
 * PyTorch's default Conv2d/Linear init (kaiming_uniform_(a=sqrt(5))): U(-b, b) with
 * b = 1/sqrt(fan_in) for the weight, and the same bound for the bias.
 */
export const pytorchDefault =
  (fanIn: number): Init =>
  (rng, shape) => {
    const b = 1 / Math.sqrt(fanIn);
    return fill(shape, () => rng.uniform(-b, b));
  };
