/**
 * Element types shared by the safetensors and .pth readers, named as safetensors names them,
 * and the conversions between them. All data is little-endian (as both formats store it and
 * as every WebGPU host is).
 *
 * In-memory form of a decoded tensor (`TypedData`): the natural typed array of the dtype,
 * except F16 and BF16, which stay as their raw 16-bit patterns in a Uint16Array (JS has no
 * portable half-float array yet), and BOOL, which is one byte per element (0 or 1).
 */

import { fromHalfBits as f16ToNumber } from '../util/half.ts';

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TypedData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const DTYPES = Object.keys(DTYPE_BYTES) as Dtype[];

export function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, x);
}

/**
 * Number of elements of a shape, or an error string. Dims must be non-negative safe integers;
 * a zero dim makes the count 0 whatever the others are (they are still checked).
 */
export function elementCount(shape: readonly unknown[]): number | string {
  let n = 1;
  let zero = false;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return `dimension ${String(d)} is not a non-negative integer`;
    }
    if (d === 0) zero = true;
    else if (!zero) {
      n *= d;
      if (n > Number.MAX_SAFE_INTEGER) return 'element count overflows';
    }
  }
  return zero ? 0 : n;
}

/** A fresh, aligned copy of `bytes` as the dtype's typed array (see `TypedData`). */
export function typedCopy(dtype: Dtype, bytes: Uint8Array): TypedData {
  return typedView(dtype, bytes.slice());
}

/** `bytes` (which must start at a multiple of the element size) viewed as the dtype's array. */
export function typedView(dtype: Dtype, bytes: Uint8Array): TypedData {
  const buf = bytes.buffer;
  const at = bytes.byteOffset;
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, at, n);
    case 'F64':
      return new Float64Array(buf, at, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf, at, n);
    case 'I64':
      return new BigInt64Array(buf, at, n);
    case 'I32':
      return new Int32Array(buf, at, n);
    case 'I16':
      return new Int16Array(buf, at, n);
    case 'I8':
      return new Int8Array(buf, at, n);
    case 'U8':
    case 'BOOL':
      return bytes;
  }
}

/** IEEE half (binary16) bits and numbers, rounding to nearest even through float32 (as PyTorch): src/util/half.ts. */
export { fromHalfBits as f16ToNumber, toHalfBits as numberToF16 } from '../util/half.ts';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** A number to bfloat16 bits: the top half of its float32, rounded to nearest even. */
export function numberToBf16(v: number): number {
  scratchF32[0] = v;
  const x = scratchU32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Raw little-endian bytes of `dtype` to float32 (a fresh array). F64 and I64 round to the
 * nearest float32; BOOL is 0 or 1.
 */
export function bytesToFloat32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const data = typedCopy(dtype, bytes);
  const out = new Float32Array(data.length);
  switch (dtype) {
    case 'F16': {
      const bits = data as Uint16Array;
      for (let i = 0; i < bits.length; i++) out[i] = f16ToNumber(bits[i]!);
      break;
    }
    case 'BF16': {
      // bfloat16 is the top 16 bits of a float32: widen in place.
      const bits = data as Uint16Array;
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
      break;
    }
    case 'I64': {
      const v = data as BigInt64Array;
      for (let i = 0; i < v.length; i++) out[i] = Number(v[i]!);
      break;
    }
    case 'BOOL': {
      for (let i = 0; i < data.length; i++) out[i] = data[i] ? 1 : 0;
      break;
    }
    default:
      out.set(data as Exclude<TypedData, BigInt64Array>);
  }
  return out;
}

/** A value as JSON for an error message: bigints as numbers, cut to `max` characters. */
export function showJson(x: unknown, max = 120): string {
  let s: string;
  try {
    s = JSON.stringify(x, (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? String(x);
  } catch {
    s = String(x);
  }
  return s.length > max ? `${s.slice(0, max)}...` : s;
}
