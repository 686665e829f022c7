/**
 * .pth (torch.save zip) reading: the PyTorch-written fixtures (protocol 2, protocol 4, and
 * re-zipped deflated with zip64 records) against the values PyTorch reported, views and shared
 * storages, state-dict extraction, malicious pickles refused and proven not run, and the
 * limits (nesting, object counts, claimed sizes, truncated or lying zips).
 */
import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { PthError, PthTensor, pthStateDict, pthToFloat32, readPth, type PthOptions } from '../../src/io/pth.ts';
import { ZipReader } from '../../src/io/zip.ts';
import { centralRecord, type ExpectedTensor, expectedJson, f32Bytes, fixture, PickleWriter, torchZip } from './helpers.ts';

const expected = expectedJson();

/** The loaded structure as the fixture script writes it: tensors replaced by their paths. */
function jsonLike(v: unknown, path: string, tensors: Map<string, PthTensor>): unknown {
  if (v instanceof PthTensor) {
    tensors.set(path, v);
    return { $tensor: path };
  }
  if (v instanceof Uint8Array) return { $bytes: [...v] };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (Array.isArray(v)) return v.map((x, i) => jsonLike(x, `${path}/${i}`, tensors));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonLike(x, `${path}/${k}`, tensors)]));
  }
  return v;
}

function expectTensor(t: PthTensor, want: ExpectedTensor, label: string): void {
  expect(t.dtype, label).toBe(want.dtype);
  expect(t.shape, label).toEqual(want.shape);
  expect(t.strides, label).toEqual(want.strides);
  expect(t.storageOffset, label).toBe(want.storage_offset);
  if (t.dtype === 'I64') expect(Array.from(t.data as BigInt64Array, String), label).toEqual(want.values);
  else if (t.dtype === 'F64') expect(Array.from(t.data as Float64Array), label).toEqual(want.values);
  // F32 / F16 / BF16 values are exact in float32: no tolerance.
  else if (t.dtype.startsWith('F') || t.dtype === 'BF16') expect(Array.from(pthToFloat32(t)), label).toEqual(want.values.map((v) => Math.fround(v as number)));
  else expect(Array.from(t.data as Int32Array), label).toEqual(want.values);
}

function error(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

function expectPthError(bytes: Uint8Array, message: RegExp, opts?: PthOptions): void {
  const e = error(() => readPth(bytes, opts));
  expect(e).toBeInstanceOf(PthError);
  expect(e.message).toMatch(message);
}

/** A one-tensor archive {'w': tensor} from a hand-written pickle. */
function tensorFile(t: Parameters<PickleWriter['tensor']>[0], storage: Uint8Array, extra?: Record<string, Uint8Array>): Uint8Array {
  const p = new PickleWriter().proto().emptyDict().str('w').tensor(t).setitem().stop();
  return torchZip(p.bytes(), { [t.key ?? '0']: storage }, { extra });
}

describe('pth fixtures written by PyTorch', () => {
  for (const file of ['checkpoint.pth', 'checkpoint-proto4.pth', 'checkpoint-zip64-deflate.pth']) {
    it(`${file}: every value and tensor as PyTorch saved it`, () => {
      const obj = readPth(fixture(file));
      const tensors = new Map<string, PthTensor>();
      expect(jsonLike(obj, '', tensors)).toEqual(expected.checkpoint.plain);
      expect([...tensors.keys()].sort()).toEqual(Object.keys(expected.checkpoint.tensors).sort());
      for (const [path, want] of Object.entries(expected.checkpoint.tensors)) expectTensor(tensors.get(path)!, want, path);
    });
  }

  it('honours strides and storage offsets of views sharing one storage', () => {
    const m = (readPth(fixture('checkpoint.pth')) as { module: Record<string, PthTensor> }).module;
    const base = m['views.base']!.data as Float32Array; // 5 x 3
    const at = (t: string, i: number, j: number, cols: number): number => (m[t]!.data as Float32Array)[i * cols + j]!;
    for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) expect(at('views.transposed', j, i, 5)).toBe(base[i * 3 + j]);
    expect(Array.from(m['views.row']!.data as Float32Array)).toEqual(Array.from(base.subarray(6, 9)));
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) expect(at('views.slice', i, j, 2)).toBe(base[(1 + i) * 3 + 2 * j]);
    const e = m['views.expanded']!;
    expect(e.strides).toEqual([1, 0]);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(at('views.expanded', i, j, 4)).toBe(at('views.expanded', i, 0, 4));
    // Each view owns its copy.
    expect(m['views.row']!.data.buffer).not.toBe(m['views.base']!.data.buffer);
    expect(m['views.empty']!.shape).toEqual([0, 3]);
    expect(m['sparse_encoder.sp_cnn.bn1.num_batches_tracked']!.shape).toEqual([]);
  });

  it('keeps shared Python objects shared and maps Namespace args to a plain object', () => {
    const obj = readPth(fixture('checkpoint.pth')) as { extras: { shared_list: unknown[] }; args: object };
    expect(obj.extras.shared_list[0]).toBe(obj.extras.shared_list[1]);
    expect(Object.getPrototypeOf(obj.args)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(obj.args))).toEqual((expected.checkpoint.plain as { args: unknown }).args);
  });

  it('also reads the archive re-zipped (deflated) by another writer', () => {
    const entries = unzipSync(fixture('checkpoint.pth'));
    const files: Zippable = {};
    for (const [k, v] of Object.entries(entries)) files[k] = [v, { level: 6 }];
    const rezipped = zipSync(files);
    expect(new ZipReader(rezipped).entries.get('checkpoint/data/0')!.method).toBe(8);
    const tensors = new Map<string, PthTensor>();
    expect(jsonLike(readPth(rezipped), '', tensors)).toEqual(expected.checkpoint.plain);
  });
});

describe('pthStateDict', () => {
  it('finds the official checkpoint layout under module and keeps tensors only', () => {
    const sd = pthStateDict(readPth(fixture('checkpoint.pth')));
    const moduleKeys = Object.keys((expected.checkpoint.plain as { module: object }).module).filter((k) => k !== 'config');
    expect([...sd.keys()]).toEqual(moduleKeys);
    expectTensor(sd.get('dense_decoder.proj.weight')!, expected.checkpoint.tensors['/module/dense_decoder.proj.weight']!, 'proj');
  });

  it('falls back to model, state_dict, then the object itself', () => {
    const t = new PthTensor('F32', [1], [1], 0, Float32Array.of(1));
    expect([...pthStateDict({ model: { a: t, b: 3 } }).keys()]).toEqual(['a']);
    expect([...pthStateDict({ state_dict: { c: t } }).keys()]).toEqual(['c']);
    expect([...pthStateDict({ 'layer.weight': t, epoch: 3 }).keys()]).toEqual(['layer.weight']);
    expect(error(() => pthStateDict({ epoch: 3 })).message).toMatch(/no tensors found in the state dict \(its keys: epoch\)/);
    expect(error(() => pthStateDict([t]))).toBeInstanceOf(PthError);
    expect(error(() => pthStateDict({ module: 'x' })).message).toMatch(/state dict is a string/);
  });
});

describe('pth refuses code', () => {
  const cases: [string, string, string][] = [
    ['malicious.pth', expected.marker, 'posix.system'],
    ['malicious-proto4.pth', `${expected.marker}-eval`, 'builtins.eval'],
  ];
  for (const [file, marker, global] of cases) {
    it(`${file}: refuses ${global} and runs nothing`, () => {
      rmSync(marker, { force: true });
      const escaped = global.replace('.', '\\.');
      expectPthError(fixture(file), new RegExp(`refusing to load: global '${escaped}' is not allowed: this file may contain code`));
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('refuses every global outside the allow-list, at the GLOBAL opcode', () => {
    const hostile = [
      ['os', 'system'], ['subprocess', 'Popen'], ['builtins', 'exec'], ['__builtin__', 'getattr'],
      ['torch', 'load'], ['torch.storage', '_load_from_bytes'], ['torch._utils', '_rebuild_tensor'],
      ['numpy.core.multiarray', '_reconstruct'], ['collections', 'defaultdict'], ['argparse', 'ArgumentParser'],
    ];
    for (const [module, name] of hostile) {
      // Garbage after the GLOBAL: the refusal must come first.
      const p = new PickleWriter().proto().global(module!, name!).op(0xff, 0xff).bytes();
      const shown = `${module === '__builtin__' ? 'builtins' : module}.${name}`;
      expectPthError(torchZip(p), new RegExp(`global '${shown.replace(/\./g, '\\.')}' is not allowed`));
    }
  });

  it('allows storage types only as tags, and calls only allowed constructors', () => {
    const callStorage = new PickleWriter().proto().global('torch', 'FloatStorage').ints([4]).reduce().stop().bytes();
    expectPthError(torchZip(callStorage), /torch\.FloatStorage is only allowed as a type tag/);
    const callString = new PickleWriter().proto().str('os.system').ints([1]).reduce().stop().bytes();
    expectPthError(torchZip(callString), /REDUCE calls a string, which is not callable/);
    const buildTensor = new PickleWriter().proto().tensor({ numel: 1, size: [1], stride: [1] }).emptyDict().op(0x62).stop();
    expectPthError(torchZip(buildTensor.bytes(), { '0': f32Bytes([1]) }), /cannot set the state of a tensor/);
    const badDevice = new PickleWriter().proto().global('torch', 'device').ints([1, 2, 3]).reduce().stop().bytes();
    expectPthError(torchZip(badDevice), /torch\.device called with unexpected arguments/);
  });
});

describe('pth limits', () => {
  const pickle = (p: PickleWriter): Uint8Array => torchZip(p.bytes());

  it('rejects deep nesting built on the stack', () => {
    const p = new PickleWriter().proto();
    for (let i = 0; i < 5000; i++) p.emptyList();
    for (let i = 1; i < 5000; i++) p.append();
    expectPthError(pickle(p.stop()), /nesting deeper than 1000 levels/);
  });

  it('rejects deep nesting built through the memo with a small stack, unless allowed', () => {
    const p = new PickleWriter().proto().emptyList().op(0x72, ...p32(0));
    for (let i = 0; i < 3000; i++) {
      p.op(0x6a, ...p32(i)).emptyList().op(0x72, ...p32(i + 1)).append().op(0x30);
    }
    const bytes = pickle(p.stop());
    expectPthError(bytes, /nesting deeper than 1000 levels \(limit maxDepth\)/);
    let depth = 0;
    for (let v = readPth(bytes, { maxDepth: 5000 }) as unknown[]; v.length; v = v[0] as unknown[]) depth++;
    expect(depth).toBe(3000);
  });

  it('rejects a reference cycle', () => {
    expectPthError(pickle(new PickleWriter().proto().emptyList().put(0).get(0).append().stop()), /reference cycle/);
  });

  it('walks exponentially shared structure in linear time', () => {
    const p = new PickleWriter().proto().emptyList().put(0);
    for (let i = 0; i < 60; i++) p.op(0x30).mark().get(i).get(i).op(0x6c).put(i + 1);
    const top = readPth(pickle(p.stop())) as unknown[][];
    expect(top[0]).toBe(top[1]); // 2^60 paths, one object per level
  });

  it('caps the number of objects', () => {
    const p = new PickleWriter().proto().emptyList().mark();
    for (let i = 0; i < 1000; i++) p.op(0x4e);
    const bytes = pickle(p.op(0x65).stop());
    expect((readPth(bytes) as unknown[]).length).toBe(1000);
    expectPthError(bytes, /more than 100 objects \(limit maxObjects\)/, { maxObjects: 100 });
  });

  const malformed: [string, PickleWriter, RegExp][] = [
    ['a string claiming 4 GB', new PickleWriter().proto().op(0x58, 0xf0, 0xff, 0xff, 0xff, 0x41), /needs 4294967280 bytes but only 1 remain/],
    ['a BINUNICODE8 claiming 2^62', new PickleWriter().proto().op(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40), /length 46116860184273\d+ is out of range \(opcode BINUNICODE8/],
    ['a huge LONG4', new PickleWriter().proto().op(0x8b, 0, 0, 0, 0x10), /integer of 268435456 bytes is too large/],
    ['a missing STOP', new PickleWriter().proto().emptyDict(), /ends without a STOP/],
    ['an unknown opcode', new PickleWriter().proto().op(0x69), /unsupported opcode .*at byte 2/],
    ['a memo miss', new PickleWriter().proto().get(7).stop(), /memo entry 7 was never stored/],
    ['a stack underflow', new PickleWriter().proto().append(), /stack underflow \(opcode APPEND at byte 2\)/],
    ['SETITEM on a list', new PickleWriter().proto().emptyList().int(1).int(2).setitem().stop(), /SETITEM on something that is not a dict/],
    ['APPEND on a tuple', new PickleWriter().proto().emptyTuple().int(1).append().stop(), /APPEND on something that is not a list/],
    ['a list as dict key', new PickleWriter().proto().emptyDict().emptyList().int(1).setitem().stop(), /unhashable/],
    ['a bad protocol', new PickleWriter().proto(9), /unsupported pickle protocol/],
    ['invalid UTF-8', new PickleWriter().proto().op(0x8c, 1, 0xff).stop(), /not valid UTF-8/],
  ];
  for (const [label, p, message] of malformed) it(`rejects ${label}`, () => expectPthError(pickle(p), message));

  it('rebuilds a hand-made strided tensor, also from big-endian storage', () => {
    const t = { numel: 6, offset: 1, size: [2, 2], stride: [1, 2] };
    const values = [0, 1, 2, 3, 4, 5];
    const little = readPth(tensorFile(t, f32Bytes(values))) as { w: PthTensor };
    expect(Array.from(little.w.data as Float32Array)).toEqual([1, 3, 2, 4]);
    const big = f32Bytes(values);
    for (let i = 0; i < big.length; i += 4) big.subarray(i, i + 4).reverse();
    const enc = new TextEncoder();
    const fromBig = readPth(tensorFile(t, big, { byteorder: enc.encode('big') })) as { w: PthTensor };
    expect(Array.from(fromBig.w.data as Float32Array)).toEqual([1, 3, 2, 4]);
    expectPthError(tensorFile(t, big, { byteorder: enc.encode('middle') }), /unknown byteorder 'middle'/);
  });

  const tensorCases: [string, Parameters<PickleWriter['tensor']>[0], number, RegExp, PthOptions?][] = [
    ['a view past its storage', { numel: 4, size: [5], stride: [1] }, 16, /size \[5\], stride \[1\], offset 0 reaches past its storage '0' of 4 elements/],
    ['an offset past its storage', { numel: 4, offset: 3, size: [2], stride: [1] }, 16, /reaches past its storage/],
    ['a storage claiming more than its entry', { numel: 100, size: [1], stride: [1] }, 16, /storage '0' holds 16 bytes but claims 100 x F32 \(400 bytes\)/],
    ['a negative stride', { numel: 4, size: [2], stride: [-1] }, 16, /are not matching lists of non-negative integers/],
    ['strides not matching the size', { numel: 4, size: [2, 2], stride: [1] }, 16, /not matching lists/],
    ['an expanded view of 2^40 elements', { numel: 1, size: [2 ** 20, 2 ** 20], stride: [0, 0] }, 4, /tensors need more than \d+ bytes \(limit maxTensorBytes\)/],
    ['a tensor over maxTensorBytes', { numel: 4, size: [4], stride: [1] }, 16, /limit maxTensorBytes/, { maxTensorBytes: 8 }],
  ];
  for (const [label, t, bytes, message, opts] of tensorCases) {
    it(`rejects ${label}`, () => expectPthError(tensorFile(t, new Uint8Array(bytes)), message, opts));
  }

  it('rejects a missing storage entry and one storage used as two dtypes', () => {
    const p = new PickleWriter().proto().emptyDict().str('w').tensor({ numel: 1, size: [1], stride: [1] }).setitem().stop();
    expectPthError(torchZip(p.bytes()), /storage '0' has no entry archive\/data\/0 in the archive/);
    const two = new PickleWriter().proto().mark().tensor({ numel: 2, size: [1], stride: [1] });
    two.tensor({ storage: 'IntStorage', numel: 2, size: [1], stride: [1] }).tuple().stop();
    expectPthError(torchZip(two.bytes(), { '0': new Uint8Array(8) }), /storage '0' is used as 2 x F32 and as 2 x I32/);
  });
});

function p32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

describe('pth zip damage', () => {
  const checkpoint = fixture('checkpoint.pth');

  it('recognises the legacy format and non-zip files', () => {
    expectPthError(Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc), /legacy torch\.save format/);
    expectPthError(new TextEncoder().encode('hello, this is not a zip archive at all'), /no end-of-central-directory record/);
    expectPthError(new Uint8Array(0), /too short for a zip archive/);
  });

  it('rejects truncated archives', () => {
    for (const n of [checkpoint.length - 1, checkpoint.length - 22, checkpoint.length - 100, checkpoint.length >> 1, 100, 21]) {
      expectPthError(checkpoint.slice(0, n), /zip: /);
    }
  });

  it('rejects entries claiming more than the file holds', () => {
    const at = centralRecord(checkpoint, 'checkpoint/data/0');
    const lying = checkpoint.slice();
    new DataView(lying.buffer).setUint32(at + 20, 0x7fffffff, true); // compressed size
    new DataView(lying.buffer).setUint32(at + 24, 0x7fffffff, true);
    expectPthError(lying, /entry 'checkpoint\/data\/0' data \(bytes \d+\.\.\d+\) lies outside the \d+-byte file/);
    const sizeOnly = checkpoint.slice();
    new DataView(sizeOnly.buffer).setUint32(at + 24, 0x7fffffff, true);
    expectPthError(sizeOnly, /stored entry 'checkpoint\/data\/0' claims 2147483647 bytes but holds \d+/);
  });

  it('rejects deflated entries claiming huge sizes, over the limit, or inflating past their claim', () => {
    const p = new PickleWriter().proto().emptyList().mark();
    for (let i = 0; i < 200; i++) p.op(0x4e);
    const deflated = torchZip(p.op(0x65).stop().bytes(), {}, { level: 6 });
    expect((readPth(deflated) as unknown[]).length).toBe(200);
    const at = centralRecord(deflated, 'archive/data.pkl');
    const patch = (size: number): Uint8Array => {
      const out = deflated.slice();
      new DataView(out.buffer).setUint32(at + 24, size, true);
      return out;
    };
    expectPthError(patch(0xfffffff0), /entry 'archive\/data\.pkl' claims 4294967280 bytes, more than its \d+ deflated bytes can hold/);
    expectPthError(deflated, /claims 206 bytes, more than the limit of 100/, { maxEntryBytes: 100 });
    expectPthError(patch(100), /inflates to more than its 100 bytes/);
    expectPthError(patch(300), /inflates to 206 bytes, not 300/);
  });

  it('counts inflated storages against maxTensorBytes (deflate hides size)', () => {
    // 8 storages of 256 KB of zeros deflate to ~250 bytes each; each is referenced by an
    // empty tensor, so only the inflation itself costs memory.
    const p = new PickleWriter().proto().mark();
    const storages: Record<string, Uint8Array> = {};
    for (let i = 0; i < 8; i++) {
      p.tensor({ key: String(i), numel: 65536, size: [0], stride: [1] });
      storages[String(i)] = new Uint8Array(65536 * 4);
    }
    const bytes = torchZip(p.tuple().stop().bytes(), storages, { level: 6 });
    expect(bytes.length).toBeLessThan(8 * 1024);
    expect((readPth(bytes) as PthTensor[]).length).toBe(8);
    expectPthError(bytes, /tensors need more than 1000000 bytes \(limit maxTensorBytes\)/, { maxTensorBytes: 1_000_000 });
    // The growing inflate buffer still returns every byte.
    const one = torchZip(new PickleWriter().proto().tensor({ numel: 65536, size: [65536], stride: [1] }).stop().bytes(), { '0': f32Bytes(Array.from({ length: 65536 }, (_, i) => i % 7)) }, { level: 6 });
    const t = readPth(one) as PthTensor;
    expect((t.data as Float32Array).every((v, i) => v === i % 7)).toBe(true);
  });

  it('rejects corrupt data, bad counts, encryption and unknown methods', () => {
    const reader = new ZipReader(checkpoint);
    const e = reader.entries.get('checkpoint/data/0')!;
    const view = new DataView(checkpoint.buffer, checkpoint.byteOffset);
    const dataAt = e.headerOffset + 30 + view.getUint16(e.headerOffset + 26, true) + view.getUint16(e.headerOffset + 28, true);
    const flipped = checkpoint.slice();
    flipped[dataAt + 1]! ^= 0x40;
    expectPthError(flipped, /entry 'checkpoint\/data\/0' fails its CRC-32 check/);

    const small = torchZip(new PickleWriter().proto().op(0x4e).stop().bytes());
    const end = small.length - 22;
    const count = small.slice();
    new DataView(count.buffer).setUint16(end + 10, 0xfffe, true);
    expectPthError(count, /central directory of \d+ bytes cannot hold 65534 entries/);
    const at = centralRecord(small, 'archive/data.pkl');
    const encrypted = small.slice();
    encrypted[at + 8]! |= 1;
    expectPthError(encrypted, /entry 'archive\/data\.pkl' is encrypted/);
    const bzip = small.slice();
    bzip[at + 10] = 12;
    expectPthError(bzip, /uses compression method 12/);
    const offset = small.slice();
    new DataView(offset.buffer).setUint32(at + 42, small.length - 10, true);
    expectPthError(offset, /local header \(bytes \d+\.\.\d+\) lies outside/);
  });
});
