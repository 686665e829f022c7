import { describe, expect, it } from 'vitest';
import { decodeHalf, encodeHalf, fromHalfBits, roundToHalf, toHalfBits } from '../src/util/half.ts';
import { storageBytes } from '../src/tensor/precision.ts';

describe('binary16 on the host', () => {
  it('encodes known values, rounding to nearest even', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff],
      [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 / 3, 0x3555],
    ];
    for (const [value, bits] of cases) expect(toHalfBits(value), `${value}`).toBe(bits);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  });

  it('round-trips every finite f16 value exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      expect(toHalfBits(fromHalfBits(h))).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });

  it('rounds within half an ulp and pads to whole words', () => {
    for (const v of [0.1, -3.14159, 1234.567, 6.1e-5, 1e-7]) {
      const r = roundToHalf(v);
      const ulp = Math.abs(v) < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10);
      expect(Math.abs(r - v)).toBeLessThanOrEqual(ulp / 2);
    }
    const enc = encodeHalf([1, 2, 3]);
    expect(enc.byteLength).toBe(8);
    expect([...decodeHalf(enc, 3)]).toEqual([1, 2, 3]);
    expect(storageBytes(3, 'f16')).toBe(8);
    expect(storageBytes(4, 'f32')).toBe(16);
  });
});
