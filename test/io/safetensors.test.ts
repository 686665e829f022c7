/**
 * safetensors: round trips through our writer for every dtype (0-d and empty tensors,
 * metadata, integer-like names), float16/bfloat16 conversion against PyTorch's rounding, the
 * PyTorch-side fixture, and every malformed-header case giving a SafetensorsError that names
 * the problem.
 */
import { describe, expect, it } from 'vitest';
import {
  readSafetensors,
  SafetensorsError,
  toFloat32,
  type TensorInput,
  writeSafetensors,
  writeSafetensorsParts,
} from '../../src/io/safetensors.ts';
import { DTYPE_BYTES, DTYPES, type Dtype, f16ToNumber, numberToBf16, numberToF16, typedCopy } from '../../src/io/dtype.ts';
import { Rng } from '../helpers/random.ts';
import { expectedJson, fixture } from './helpers.ts';

const expected = expectedJson();

/** Random raw bytes that are valid for the dtype (BOOL as 0/1). */
function randomBytes(rng: Rng, dtype: Dtype, count: number): Uint8Array {
  const out = Uint8Array.from({ length: count * DTYPE_BYTES[dtype] }, () => rng.int(256));
  if (dtype === 'BOOL') out.forEach((_, i) => (out[i] = rng.int(2)));
  if (dtype === 'F32') new Float32Array(out.buffer).forEach((_, i, a) => (a[i] = rng.normal()));
  return out;
}

function file(header: string | object, data: Uint8Array | number = 0, lengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setUint32(0, lengthOverride ?? json.length, true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function expectError(bytes: Uint8Array, message: RegExp): void {
  let error: unknown;
  try {
    readSafetensors(bytes);
  } catch (e) {
    error = e;
  }
  expect(error, `expected an error matching ${message}`).toBeInstanceOf(SafetensorsError);
  expect((error as Error).message).toMatch(message);
}

describe('safetensors round trip', () => {
  it('keeps every dtype, 0-d and empty tensors, names in order and metadata', () => {
    const rng = new Rng(11);
    const inputs: TensorInput[] = [];
    for (const dtype of DTYPES) {
      for (const shape of [[3, 5], [], [0], [2, 0, 3], [7]]) {
        const count = shape.reduce((a, b) => a * b, 1);
        // Interleave sizes so the writer has to reorder the data for alignment.
        inputs.push({ name: `${dtype}/${shape.join('x') || 'scalar'}`, dtype, shape, data: randomBytes(rng, dtype, count) });
      }
    }
    inputs.push({ name: '10', shape: [1], data: Float32Array.of(1) }, { name: '2', shape: [1], data: Int8Array.of(-2) });
    const metadata = { format: 'pt', note: 'ünicode ✓ "quoted"', empty: '' };
    const bytes = writeSafetensors(inputs, metadata);

    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    expect(headerLength % 8).toBe(0); // data starts 8-byte aligned
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()]).toEqual(inputs.map((t) => t.name)); // '10' before '2', as written
    for (const t of inputs) {
      const e = back.tensors.get(t.name)!;
      expect(e.dtype).toBe(t.dtype ?? (t.data instanceof Float32Array ? 'F32' : 'I8'));
      expect(e.shape).toEqual(t.shape);
      expect(e.data).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      // Every tensor starts at a multiple of its element size within the file.
      expect((e.data.byteOffset - bytes.byteOffset) % DTYPE_BYTES[e.dtype], t.name).toBe(0);
    }
  });

  it('writes the natural dtype of typed arrays and views them without copying', () => {
    const f32 = Float32Array.of(1.5, -2, 3);
    const i64 = BigInt64Array.of(-(2n ** 62n), 5n);
    const parts = writeSafetensorsParts([
      { name: 'f', shape: [3], data: f32 },
      { name: 'i', shape: [2], data: i64 },
      { name: 'd', shape: [1], data: Float64Array.of(Math.PI) },
      { name: 'h', shape: [2], data: Int16Array.of(-7, 9) },
    ]);
    expect(parts.length).toBe(5); // header + one per tensor
    expect(parts.some((p) => p.buffer === f32.buffer)).toBe(true);
    const whole = writeSafetensors([
      { name: 'f', shape: [3], data: f32 },
      { name: 'i', shape: [2], data: i64 },
      { name: 'd', shape: [1], data: Float64Array.of(Math.PI) },
      { name: 'h', shape: [2], data: Int16Array.of(-7, 9) },
    ]);
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) joined.set(p, (at += p.length) - p.length);
    expect(joined).toEqual(whole);
    const back = readSafetensors(whole);
    expect(back.tensors.get('i')!.dtype).toBe('I64');
    expect(typedCopy('I64', back.tensors.get('i')!.data)).toEqual(i64);
    expect(toFloat32(back.tensors.get('f')!)).toEqual(f32);
    expect(toFloat32(back.tensors.get('d')!)[0]).toBe(Math.fround(Math.PI));
    expect(toFloat32(back.tensors.get('h')!)).toEqual(Float32Array.of(-7, 9));
    expect(back.metadata).toEqual({});
  });

  it('converts float32 to F16 and BF16 exactly as PyTorch rounds', () => {
    const { f32, f16_bits: f16, bf16_bits: bf16 } = expected.conversions;
    const data = Float32Array.from(f32);
    const bytes = writeSafetensors([
      { name: 'h', dtype: 'F16', shape: [data.length], data },
      { name: 'b', dtype: 'BF16', shape: [data.length], data },
    ]);
    const back = readSafetensors(bytes);
    expect(Array.from(typedCopy('F16', back.tensors.get('h')!.data) as Uint16Array)).toEqual(f16);
    expect(Array.from(typedCopy('BF16', back.tensors.get('b')!.data) as Uint16Array)).toEqual(bf16);
    // And back to float32: PyTorch's .half().float() is exact, so compare with the bits decoded.
    const h = toFloat32(back.tensors.get('h')!);
    f16.forEach((bits, i) => expect(h[i]).toBe(f16ToNumber(bits)));
  });

  it('half-float conversion is exact both ways for every finite bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = f16ToNumber(bits);
      if (Number.isNaN(v)) expect(Number.isNaN(f16ToNumber(numberToF16(v)))).toBe(true);
      else expect(numberToF16(v), `bits ${bits.toString(16)}`).toBe(bits);
      // Every f16 value is a float32 whose bf16 rounding must round-trip through widening.
      const b = numberToBf16(v);
      const widened = new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
      if (!Number.isNaN(v)) expect(numberToBf16(widened)).toBe(b);
    }
  });

  it('rejects what it cannot write', () => {
    const bad: [TensorInput[], RegExp][] = [
      [[{ name: 'a', shape: [2], data: Float32Array.of(1) }], /tensor "a".*needs 8 bytes but the data has 4/],
      [[{ name: 'a', shape: [1], data: Float32Array.of(1) }, { name: 'a', shape: [1], data: Float32Array.of(1) }], /"a" given twice/],
      [[{ name: 'a', shape: [1], data: Uint16Array.of(1) }], /give dtype F16 or BF16/],
      [[{ name: 'a', shape: [1], dtype: 'I32', data: Float32Array.of(1) }], /cannot store a Float32Array as I32/],
      [[{ name: 'a', shape: [-1], data: Float32Array.of(1) }], /dimension -1 is not a non-negative integer/],
      [[{ name: '__metadata__', shape: [1], data: Float32Array.of(1) }], /cannot be named __metadata__/],
    ];
    for (const [inputs, message] of bad) expect(() => writeSafetensors(inputs)).toThrow(message);
    expect(() => writeSafetensors([], { a: 1 as unknown as string })).toThrow(/__metadata__ value for "a" is not a string/);
  });
});

describe('safetensors from PyTorch', () => {
  it('reads the fixture written on the PyTorch side', () => {
    const file = readSafetensors(fixture('tensors.safetensors'));
    expect(file.metadata).toEqual(expected.safetensors.metadata);
    expect(new Set(file.tensors.keys())).toEqual(new Set(Object.keys(expected.safetensors.tensors)));
    for (const [name, want] of Object.entries(expected.safetensors.tensors)) {
      const t = file.tensors.get(name)!;
      expect(t.dtype, name).toBe(want.dtype);
      expect(t.shape, name).toEqual(want.shape);
      if (t.dtype === 'I64') {
        expect(Array.from(typedCopy('I64', t.data) as BigInt64Array, String), name).toEqual(want.values);
      } else {
        // Every stored value is exactly representable in float32 except F64's, which toFloat32 rounds.
        expect(Array.from(toFloat32(t)), name).toEqual(want.values.map((v) => Math.fround(v as number)));
      }
    }
    expect(Array.from(typedCopy('F64', file.tensors.get('f64')!.data) as Float64Array)).toEqual(expected.safetensors.tensors.f64!.values);
  });
});

describe('safetensors malformed files', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  it('accepts a valid hand-made file with tensors listed out of data order', () => {
    const f = readSafetensors(file({ b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] }, ...ok }, 12));
    expect([...f.tensors.keys()]).toEqual(['b', 'a']);
    expect(f.tensors.get('b')!.data.length).toBe(4);
    // A null __metadata__ is allowed by the reference implementation.
    expect(readSafetensors(file({ __metadata__: null, ...ok }, 8)).metadata).toEqual({});
  });

  const cases: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /file is 0 bytes, too short/],
    ['7 bytes', new Uint8Array(7), /too short for the 8-byte header length/],
    ['header past the end', file(ok, 8, 4000), /header length 4000 runs past the end of the file/],
    ['header over 100 MB', file(ok, 8, 100_000_001), /header length 100000001 exceeds the 100 MB limit/],
    ['u64 high word set', (() => { const f = file(ok, 8); f[4] = 1; return f; })(), /exceeds the 100 MB limit/],
    ['raw 0xff byte', (() => { const f = file('{"a":{}}  ', 0); f[10] = 0xff; return f; })(), /header is not valid UTF-8/],
    ['not starting with {', file('[1,2]', 0), /does not start with "\{"/],
    ['invalid JSON', file('{"a": ', 0), /header is not valid JSON/],
    ['entry not an object', file({ a: 5 }, 0), /tensor "a": entry is not an object/],
    ['unknown dtype', file({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), /tensor "a": unknown dtype "F8_E4M3"/],
    ['missing dtype', file({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "a": unknown dtype undefined/],
    ['shape not a list', file({ a: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, 8), /tensor "a": shape is not an array/],
    ['negative dim', file({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), /tensor "a": shape \[-2\]: dimension -2 is not a non-negative integer/],
    ['fractional dim', file({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, 8), /dimension 1.5 is not a non-negative integer/],
    ['string dim', file({ a: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, 8), /dimension 2 is not a non-negative integer/],
    ['overflowing shape', file({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), /element count overflows/],
    ['count vs bytes', file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor "a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/],
    ['offsets not a pair', file({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8), /tensor "a": data_offsets \[0\] is not two non-negative integers/],
    ['negative offset', file({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8), /is not two non-negative integers/],
    ['begin after end', file({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8), /data_offsets \[8, 0\] out of range/],
    ['end past data', file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /tensor "a": data_offsets \[0, 16\] out of range \(the data section has 8 bytes\)/],
    ['overlap', file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /tensor "b" overlaps tensor "a"/],
    ['hole', file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12), /hole of 4 bytes in the data before tensor "b"/],
    ['hole at the start', file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /hole of 4 bytes in the data before tensor "a"/],
    ['trailing bytes', file(ok, 12), /4 bytes after the last tensor's data/],
    ['duplicate name', file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2), /header has the key "a" twice/],
    ['duplicate metadata key', file('{"__metadata__":{"k":"1","k":"2"}}', 0), /header has the key "k" twice/],
    ['escaped duplicate name', file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2), /header has the key "a" twice/],
    ['metadata not an object', file({ __metadata__: ['x'] }, 0), /__metadata__ is not an object/],
    ['metadata value not a string', file({ __metadata__: { epoch: 3 } }, 0), /__metadata__ value for "epoch" is not a string/],
  ];
  for (const [label, bytes, message] of cases) it(label, () => expectError(bytes, message));

  it('bounds a huge claimed header without allocating it', () => {
    // A 99 MB header length on a 100-byte file fails on the length check, not on a read.
    const f = file(ok, 8, 99_000_000);
    expectError(f, /runs past the end of the file/);
  });

  it('does not let a "__proto__" name reach a prototype', () => {
    // (Written as text: in an object literal `__proto__` would set the prototype instead.)
    const g = readSafetensors(file('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"__proto__":"x"}}', 1));
    expect([...g.tensors.keys()]).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(g.metadata)).toBe(Object.prototype);
    expect(g.metadata['__proto__' as string]).toBe('x');
  });
});
