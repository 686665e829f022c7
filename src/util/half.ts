/**
 * IEEE binary16 on the host: f16 tensors are uploaded and read back through these, and the
 * safetensors reader and writer convert F16 with them (Node 20 has no Float16Array). Rounding is to nearest, ties to even, as WGSL's f32 -> f16 conversion
 * on every adapter we test; values past the f16 range become +-Infinity, NaN stays NaN.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of `value` (rounded to nearest even). */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero): shift the mantissa with its implicit bit, round to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, up to Infinity: the right result.
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** The value of binary16 bits `h`. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** `value` rounded to the nearest f16 (what storing it in an f16 tensor keeps). */
export function roundToHalf(value: number): number {
  return fromHalfBits(toHalfBits(value));
}

/**
 * `values` as binary16, padded to a multiple of 4 bytes: buffer copies and writes move whole
 * 4-byte words.
 */
export function encodeHalf(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length + (values.length & 1));
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]!);
  return out;
}

/** The first `count` binary16 values of `bits`, widened to f32 (exactly: f16 is a subset). */
export function decodeHalf(bits: Uint16Array, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = fromHalfBits(bits[i]!);
  return out;
}
