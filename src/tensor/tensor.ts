/**
 * A Tensor is a GPU buffer with a shape, owned by a Context. Feature maps carry a SiteLayout
 * and have shape [rows, C] (channels last); weights keep PyTorch's layouts (OIHW, IOHW).
 * Model code never frees a tensor: the Context's scopes do (see context.ts).
 */
import type { SiteLayout } from './layout.ts';
import type { Context } from './context.ts';
import { decodeHalf } from '../util/half.ts';
import { storageBytes, type DType } from './precision.ts';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** True if gradients flow back through this tensor. */
  requiresGrad = false;
  /** Released buffers are detected on use instead of silently reading reused memory. */
  released = false;

  constructor(
    readonly ctx: Context,
    readonly shape: readonly number[],
    private buf: GPUBuffer,
    readonly layout: SiteLayout | null = null,
    /** How elements are stored; the Context's precision policy decides (precision.ts). */
    readonly dtype: DType = 'f32',
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
    if (layout && (shape.length !== 2 || shape[0] !== layout.rows)) {
      throw new Error(`a feature map with ${layout.rows} rows must have shape [rows, C], got [${shape}]`);
    }
  }

  get buffer(): GPUBuffer {
    if (this.released) throw new Error(`tensor #${this.id} [${this.shape}] was used after its scope ended`);
    return this.buf;
  }

  /** Bytes the elements take, rounded up to whole 4-byte words (what copies and clears move). */
  get bytes(): number {
    return this.dtype === 'f32' ? this.size * 4 : storageBytes(this.size, this.dtype);
  }

  /** Channels of a feature map (its last dimension). */
  get channels(): number {
    return this.shape[this.shape.length - 1]!;
  }

  /** Reads the values back as f32 (asynchronously; the copy is recorded at once). */
  async read(): Promise<Float32Array> {
    if (this.dtype === 'f32') return this.ctx.gpu.readFloat32(this.buffer, this.size);
    return decodeHalf(new Uint16Array(await this.ctx.gpu.read(this.buffer, this.bytes)), this.size);
  }

  toString(): string {
    return `Tensor#${this.id}[${this.shape.join('x')}]${this.dtype === 'f32' ? '' : ` ${this.dtype}`}`;
  }
}

/** A long-lived, named tensor that receives gradients (`grad` accumulates with +=). */
export class Parameter extends Tensor {
  grad: Tensor | null = null;

  constructor(ctx: Context, readonly name: string, shape: readonly number[], buffer: GPUBuffer) {
    super(ctx, shape, buffer, null);
    this.requiresGrad = true;
  }
}
