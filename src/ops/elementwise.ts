/**
 * Elementwise ops (shaders/elementwise.wgsl, launched by src/tensor/elementwise-kernel.ts) and
 * the scalar sum (shaders/reduce.wgsl).
 * Inputs of a binary op have the same size and dtype; feature maps must share their layout.
 * Outputs and gradients take their input's dtype (f16 activations stay f16); sums are f32.
 */
import type { Context } from '../tensor/context.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { DType } from '../tensor/precision.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { runElementwise } from '../tensor/elementwise-kernel.ts';
import { markGrad } from './common.ts';

/** Launches `entry` on tensors stored as `y`'s dtype. */
function run(entry: string, y: Tensor, bufs: { a?: GPUBuffer; b?: GPUBuffer; wide?: GPUBuffer; y?: GPUBuffer; wide_out?: GPUBuffer }, alpha = 0): void {
  runElementwise(y.ctx.gpu, entry, y.size, bufs, alpha, y.dtype);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: sizes differ, [${a.shape}] vs [${b.shape}]`);
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes differ, ${a} is ${a.dtype}, ${b} is ${b.dtype}`);
  if (a.layout && b.layout && !a.layout.equals(b.layout)) {
    throw new Error(`${op}: feature maps have different site layouts`);
  }
}

/** Output of a unary/binary op on `x`: same shape and layout; requires grad if any input does. */
function like(x: Tensor, ...others: Tensor[]): Tensor {
  return markGrad(x.ctx.empty(x.shape, x.layout, x.dtype), x, ...others);
}

function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const y = like(a, b);
  run('add', y, { a: a.buffer, b: b.buffer, y: y.buffer });
  if (y.requiresGrad) a.ctx.tape.record('add', [a, b] as const, y, (gy) => [gy, gy]);
  return y;
}

function mul(a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  const y = like(a, b);
  run('mul', y, { a: a.buffer, b: b.buffer, y: y.buffer });
  if (y.requiresGrad) {
    a.ctx.tape.record('mul', [a, b] as const, y, (gy) => [
      a.requiresGrad ? mul(gy, b) : null,
      b.requiresGrad ? mul(gy, a) : null,
    ]);
  }
  return y;
}

function scale(x: Tensor, alpha: number): Tensor {
  const y = like(x);
  run('scale', y, { a: x.buffer, y: y.buffer }, alpha);
  if (y.requiresGrad) x.ctx.tape.record('scale', [x] as const, y, (gy) => [scale(gy, alpha)]);
  return y;
}

/** dst += alpha * src, in place; not recorded (gradient accumulation, optimizer updates). */
function accumulate(dst: Tensor, src: Tensor, alpha = 1): void {
  sameShape('accumulate', dst, src);
  run('axpy', dst, { a: src.buffer, y: dst.buffer }, alpha);
}

function fill(shape: readonly number[], value: number, ctx: Context, layout: SiteLayout | null = null, dtype: DType = 'f32'): Tensor {
  const y = ctx.empty(shape, layout, dtype);
  run('fill', y, { y: y.buffer }, value);
  return y;
}

type Activation = 'relu' | 'relu6' | 'gelu';

function activation(kind: Activation, x: Tensor): Tensor {
  const y = like(x);
  run(kind, y, { a: x.buffer, y: y.buffer });
  if (y.requiresGrad) {
    x.ctx.tape.record(kind, [x] as const, y, (gy) => {
      const gx = x.ctx.empty(x.shape, x.layout, x.dtype);
      run(`${kind}_backward`, gx, { a: x.buffer, b: gy.buffer, y: gx.buffer });
      return [gx];
    });
  }
  return y;
}

/**
 * Sum of all elements (or of their squares) into a [1] f32 tensor, by repeated partial sums:
 * one scalar over a flat buffer, not the per-column sums of chunks.ts `columnSums`. The first
 * pass reads x's dtype; the partial sums are f32.
 */
function reduce(x: Tensor, squares: boolean): Tensor {
  const ctx = x.ctx;
  const gpu = ctx.gpu;
  const CHUNK = 2048;
  let src = x.buffer;
  let n = x.size;
  let first = true;
  for (;;) {
    const groups = Math.max(1, Math.ceil(n / CHUNK));
    const out = ctx.empty([groups]);
    const p = gpu.pipeline('reduce', 'reduce_sum', { SQUARE: first && squares }, { act: first ? x.dtype : 'f32' });
    gpu.dispatch(p, { x: src, y: out.buffer }, { n }, gpu.grid(groups));
    first = false;
    src = out.buffer;
    n = groups;
    if (groups === 1) return out;
  }
}

function sum(x: Tensor): Tensor {
  const total = reduce(x, false);
  const y = x.ctx.empty([1]);
  x.ctx.gpu.copy(total.buffer, y.buffer, 4);
  if (markGrad(y, x).requiresGrad) {
    x.ctx.tape.record('sum', [x] as const, y, (gy) => {
      const gx = x.ctx.empty(x.shape, x.layout, x.dtype);
      run('broadcast_scalar', gx, { wide: gy.buffer, y: gx.buffer }, 1);
      return [gx];
    });
  }
  return y;
}

/**
 * x in the context's activation dtype (precision.ts): x itself when it already is, else an f16
 * copy of the f32 tensor (the model's input image entering the network). Its gradient returns
 * to f32.
 */
function toActivation(x: Tensor): Tensor {
  const ctx = x.ctx;
  if (x.dtype === ctx.precision) return x;
  if (x.dtype !== 'f32') throw new Error(`toActivation: ${x} is ${x.dtype}; only f32 data enters the ${ctx.precision} activations`);
  const y = markGrad(ctx.empty(x.shape, x.layout, ctx.precision), x);
  run('from_f32', y, { wide: x.buffer, y: y.buffer });
  if (y.requiresGrad) {
    ctx.tape.record('toActivation', [x] as const, y, (gy) => {
      const gx = ctx.empty(x.shape, x.layout);
      runElementwise(ctx.gpu, 'to_f32', gx.size, { a: gy.buffer, wide_out: gx.buffer }, 0, gy.dtype);
      return [gx];
    });
  }
  return y;
}

/**
 * x as f32: x itself when it is, else an f32 copy of the activation (features leaving the
 * f16 activations for an f32 head and loss). Its gradient returns in x's dtype.
 */
function fromActivation(x: Tensor): Tensor {
  const ctx = x.ctx;
  if (x.dtype === 'f32') return x;
  const y = markGrad(ctx.empty(x.shape, x.layout), x);
  runElementwise(ctx.gpu, 'to_f32', y.size, { a: x.buffer, wide_out: y.buffer }, 0, x.dtype);
  if (y.requiresGrad) {
    ctx.tape.record('fromActivation', [x] as const, y, (gy) => {
      const gx = ctx.empty(x.shape, x.layout, x.dtype);
      run('from_f32', gx, { wide: gy.buffer, y: gx.buffer });
      return [gx];
    });
  }
  return y;
}

/** Sum of squares into a [1] tensor; not recorded (norms for the optimizer and metrics). */
function sumOfSquares(x: Tensor): Tensor {
  return reduce(x, true);
}

export const elementwise = {
  add,
  mul,
  scale,
  accumulate,
  fill,
  relu: (x: Tensor) => activation('relu', x),
  relu6: (x: Tensor) => activation('relu6', x),
  gelu: (x: Tensor) => activation('gelu', x),
  sum,
  sumOfSquares,
  toActivation,
  fromActivation,
};
