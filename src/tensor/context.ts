/**
 * A Context ties tensors to one Gpu, records ops on its tape, and owns tensor lifetimes.
 *
 * Lifetimes: every tensor an op makes belongs to the innermost open scope. `tidy(fn)` opens a
 * scope, runs `fn`, and releases everything made inside except the tensors `fn` returns (they
 * move to the enclosing scope). Parameters and `persistent` tensors live until `dispose()`.
 * Model code therefore never frees anything; the trainer wraps each step in `tidy`.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { SiteLayout } from './layout.ts';
import { Tape } from './tape.ts';
import { Parameter, Tensor } from './tensor.ts';
import { runElementwise } from './elementwise-kernel.ts';
import { encodeHalf } from '../util/half.ts';
import { checkPrecision, storageBytes, supportsF16, type DType, type Precision } from './precision.ts';

export interface ContextOptions {
  /**
   * 'f16' stores activations and their gradients as f16 (precision.ts says which tensors);
   * refused on a device without `shader-f16`. Default 'f32'.
   */
  precision?: Precision;
}

interface Scope {
  tensors: Tensor[];
  layoutBuffers: Map<number, { sites: GPUBuffer | null; rowOf: GPUBuffer | null }>;
}

export class Context {
  readonly tape = new Tape();
  private scopes: Scope[] = [newScope()];
  private persistents = new Set<Tensor>();
  private gradDepth = 0;

  /** The dtype of activations and activation gradients (precision.ts). */
  readonly precision: Precision;

  constructor(
    readonly gpu: Gpu,
    options: ContextOptions = {},
  ) {
    this.precision = options.precision ?? 'f32';
    checkPrecision(gpu, this.precision);
  }

  /** False inside `noGrad`: ops then record nothing. */
  get gradEnabled(): boolean {
    return this.gradDepth === 0;
  }

  // ---- making tensors ------------------------------------------------------------------

  /** A tensor with undefined contents, owned by the current scope. */
  empty(shape: readonly number[], layout: SiteLayout | null = null, dtype: DType = 'f32'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'f16' && !supportsF16(this.gpu)) checkPrecision(this.gpu, 'f16');
    const t = new Tensor(this, shape, this.gpu.buffer(storageBytes(size, dtype)), layout, dtype);
    this.top().tensors.push(t);
    return t;
  }

  /** An activation (or activation gradient) with undefined contents, in the policy's dtype. */
  activation(shape: readonly number[], layout: SiteLayout | null = null): Tensor {
    return this.empty(shape, layout, this.precision);
  }

  zeros(shape: readonly number[], layout: SiteLayout | null = null, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, layout, dtype);
    this.gpu.zero(t.buffer, t.bytes);
    return t;
  }

  /**
   * A tensor holding `data`. Data that changes from step to step (a mask's flags, random
   * draws) is given as a function, called once now or, in a recorded step, on every replay.
   */
  fromArray(
    data: ArrayLike<number> | (() => Float32Array),
    shape: readonly number[],
    layout: SiteLayout | null = null,
    dtype: DType = 'f32',
  ): Tensor {
    const t = this.empty(shape, layout, dtype);
    const checked = (values: ArrayLike<number>): Float32Array | Uint16Array => {
      if (values.length !== t.size) throw new Error(`fromArray: ${values.length} values for shape [${shape}]`);
      if (dtype === 'f16') return encodeHalf(values);
      return values instanceof Float32Array ? values : Float32Array.from(values);
    };
    this.gpu.write(t.buffer, typeof data === 'function' ? () => checked(data()) : checked(data));
    return t;
  }

  /** A named trainable tensor that lives as long as the context. */
  parameter(name: string, shape: readonly number[], data?: ArrayLike<number>): Parameter {
    const size = shape.reduce((a, b) => a * b, 1);
    const p = new Parameter(this, name, shape, this.gpu.buffer(Math.max(size, 1) * 4, name, true));
    if (data) {
      if (data.length !== size) throw new Error(`parameter ${name}: ${data.length} values for shape [${shape}]`);
      this.gpu.write(p.buffer, data instanceof Float32Array ? data : Float32Array.from(data));
    } else {
      this.gpu.zero(p.buffer, size * 4);
    }
    this.persistents.add(p);
    return p;
  }

  /** A long-lived tensor (optimizer state, running statistics), zero-filled. */
  persistent(shape: readonly number[], layout: SiteLayout | null = null, dtype: DType = 'f32'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = new Tensor(this, shape, this.gpu.buffer(storageBytes(size, dtype), 'persistent', true), layout, dtype);
    this.gpu.zero(t.buffer, t.bytes);
    this.persistents.add(t);
    return t;
  }

  // ---- scopes ---------------------------------------------------------------------------

  /** Runs `fn` in a new scope; releases what it made except the tensors it returns. */
  tidy<T>(fn: () => T): T {
    const tapeLength = this.tape.length;
    this.scopes.push(newScope());
    let result: T;
    try {
      result = fn();
    } finally {
      const scope = this.scopes.pop()!;
      const keep = new Set<Tensor>();
      collectTensors(result!, keep);
      const parent = this.top();
      for (const t of scope.tensors) {
        if (keep.has(t)) parent.tensors.push(t);
        else this.release(t);
      }
      this.releaseLayoutBuffers(scope);
      // Records made inside refer to released tensors; they cannot be replayed.
      this.tape.truncate(tapeLength);
    }
    return result;
  }

  /** Runs `fn` without recording on the tape (inference, backward rules, optimizer). */
  noGrad<T>(fn: () => T): T {
    this.gradDepth++;
    try {
      return fn();
    } finally {
      this.gradDepth--;
    }
  }

  /**
   * Back-propagates from `root` (a scalar, or any tensor with `seed` as its gradient).
   * Parameters accumulate into `.grad`; returns the gradients of other leaf tensors by id.
   */
  backward(root: Tensor, seed: Tensor | null = null): Map<number, Tensor> {
    return this.noGrad(() =>
      this.tape.backward(root, seed, {
        add: (a, b) => {
          sameDtype('a sum of gradients', a, b);
          const y = this.empty(a.shape, a.layout, a.dtype);
          runElementwise(this.gpu, 'add', y.size, { a: a.buffer, b: b.buffer, y: y.buffer }, 0, a.dtype);
          return y;
        },
        accumulate: (dst, src) => {
          sameDtype('a parameter gradient', dst, src);
          runElementwise(this.gpu, 'axpy', dst.size, { a: src.buffer, y: dst.buffer }, 1, dst.dtype);
        },
        persistentCopy: (src) => {
          const t = this.persistent(src.shape, null, src.dtype);
          this.gpu.copy(src.buffer, t.buffer, src.bytes);
          return t;
        },
        onesLike: (t) => {
          const y = this.empty(t.shape, t.layout, t.dtype);
          runElementwise(this.gpu, 'fill', y.size, { y: y.buffer }, 1, t.dtype);
          return y;
        },
      }),
    );
  }

  /** Sets every parameter's gradient to zero (keeps the buffers). */
  zeroGrad(params: Iterable<Parameter>): void {
    for (const p of params) if (p.grad) this.gpu.zero(p.grad.buffer, p.grad.bytes);
  }

  /**
   * GPU copies of a sparse layout's `sites` and `rowOf` tables, made once per scope.
   * Dense layouts need none (kernels compute indices), so both are null.
   */
  layoutBuffers(layout: SiteLayout): { sites: GPUBuffer | null; rowOf: GPUBuffer | null } {
    if (layout.isDense) return { sites: null, rowOf: null };
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const hit = this.scopes[i]!.layoutBuffers.get(layout.id);
      if (hit) return hit;
    }
    // A replayed step sees the next mask through the same layout object (PatchMask.assign
    // rewrites its sites in place), so the writes read the layout when they run.
    const made = {
      sites: this.gpu.buffer(layout.sites!.byteLength, 'sites'),
      rowOf: this.gpu.buffer(layout.gridSize * 4, 'rowOf'),
    };
    this.gpu.write(made.sites, () => layout.sites!);
    this.gpu.write(made.rowOf, () => layout.rowOf);
    this.top().layoutBuffers.set(layout.id, made);
    return made;
  }

  /** Releases every tensor, parameter and buffer of this context (the Gpu stays). */
  dispose(): void {
    while (this.scopes.length > 0) {
      const scope = this.scopes.pop()!;
      for (const t of scope.tensors) this.release(t);
      this.releaseLayoutBuffers(scope);
    }
    this.scopes.push(newScope());
    for (const t of this.persistents) this.release(t);
    this.persistents.clear();
    this.tape.truncate(0);
  }

  // ---- internals -----------------------------------------------------------------------

  private top(): Scope {
    return this.scopes[this.scopes.length - 1]!;
  }

  private release(t: Tensor): void {
    if (t.released) return;
    this.gpu.release(t.buffer);
    t.released = true;
  }

  private releaseLayoutBuffers(scope: Scope): void {
    for (const { sites, rowOf } of scope.layoutBuffers.values()) {
      if (sites) this.gpu.release(sites);
      if (rowOf) this.gpu.release(rowOf);
    }
    scope.layoutBuffers.clear();
  }
}

/** Gradients are summed in one dtype: a mix means an op broke the precision policy. */
function sameDtype(what: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new Error(`${what}: ${a} and ${b} have different dtypes (${a.dtype}, ${b.dtype})`);
}

function newScope(): Scope {
  return { tensors: [], layoutBuffers: new Map() };
}

/** Finds the tensors in a returned value (a tensor, or arrays/objects holding tensors). */
function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const v of items) collectTensors(v, out, depth + 1);
}
