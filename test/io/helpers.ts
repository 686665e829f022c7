/**
 * Builders for hand-made hostile inputs: pickles opcode by opcode, torch.save-style zips
 * around them (with fflate, stored or deflated), and the fixture loader.
 */
import { readFileSync } from 'node:fs';
import { zipSync, type Zippable } from 'fflate';

const fixtures = new URL('../fixtures/io/', import.meta.url);

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, fixtures)));
}

export function expectedJson(): Expected {
  return JSON.parse(readFileSync(new URL('expected.json', fixtures), 'utf8')) as Expected;
}

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  strides: number[];
  storage_offset: number;
  /** Numbers; I64 as decimal strings. */
  values: (number | string)[];
}

export interface Expected {
  marker: string;
  checkpoint: { plain: unknown; tensors: Record<string, ExpectedTensor> };
  safetensors: { metadata: Record<string, string>; tensors: Record<string, ExpectedTensor> };
  conversions: { f32: number[]; f16_bits: number[]; bf16_bits: number[] };
}

const utf8 = new TextEncoder();

/** A pickle written opcode by opcode (protocol 2 unless told otherwise). */
export class PickleWriter {
  private out: number[] = [];

  op(code: number, ...bytes: number[]): this {
    this.out.push(code, ...bytes);
    return this;
  }
  u32(v: number): number[] {
    return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  }
  proto(p = 2): this {
    return this.op(0x80, p);
  }
  str(s: string): this {
    const b = utf8.encode(s);
    return this.op(0x58, ...this.u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    return this.op(0x4a, ...this.u32(n >>> 0));
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...utf8.encode(`${module}\n${name}\n`));
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  put(i: number): this {
    return this.op(0x71, i);
  }
  get(i: number): this {
    return this.op(0x68, i);
  }
  reduce(): this {
    return this.op(0x52);
  }
  setitem(): this {
    return this.op(0x73);
  }
  append(): this {
    return this.op(0x61);
  }
  stop(): this {
    return this.op(0x2e);
  }
  /** A tuple of ints. */
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` of a persistent storage. */
  tensor(t: { storage?: string; key?: string; numel: number; offset?: number; size: number[]; stride: number[] }): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.storage ?? 'FloatStorage').str(t.key ?? '0').str('cpu').int(t.numel).tuple().op(0x51);
    this.int(t.offset ?? 0).ints(t.size).ints(t.stride).op(0x89);
    return this.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** A torch.save-style zip: archive/data.pkl, archive/data/<key>, archive/version (+ extras). */
export function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, opts: { level?: 0 | 6; extra?: Record<string, Uint8Array> } = {}): Uint8Array {
  const level = opts.level ?? 0;
  const files: Zippable = { 'archive/data.pkl': [pkl, { level }] };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level }];
  files['archive/version'] = [utf8.encode('3\n'), { level }];
  for (const [k, v] of Object.entries(opts.extra ?? {})) files[`archive/${k}`] = [v, { level }];
  return zipSync(files);
}

export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Where the central directory record of `name` starts, or -1. */
export function centralRecord(zip: Uint8Array, name: string): number {
  const view = new DataView(zip.buffer, zip.byteOffset);
  const want = utf8.encode(name);
  for (let at = zip.length - 46; at >= 0; at--) {
    if (view.getUint32(at, true) !== 0x02014b50 || view.getUint16(at + 28, true) !== want.length) continue;
    if (want.every((b, i) => zip[at + 46 + i] === b)) return at;
  }
  return -1;
}
