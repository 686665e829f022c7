/**
 * safetensors read and write.
 *
 * The format: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the raw little-endian tensor data; offsets are relative to the start of the data.
 *
 * Reading validates everything the reference implementation (huggingface/safetensors)
 * validates: header size (at most 100 MB, inside the file), JSON, entry fields, dtype, shape,
 * byte counts, and that the tensors tile the data section exactly (no overlaps, no holes, no
 * trailing bytes; order is free). Every problem is a `SafetensorsError` naming the tensor.
 * Tensors are views into the file's bytes: reading allocates only the header's JSON.
 *
 * Writing pads the header with spaces so the data starts 8-byte aligned, and lays the data
 * out by element size, largest first (as the reference writer does), so every tensor starts
 * at a multiple of its element size and can be viewed as a typed array without copying.
 */
import {
  bytesToFloat32,
  type Dtype,
  DTYPE_BYTES,
  DTYPES,
  elementCount,
  isDtype,
  numberToBf16,
  numberToF16,
  showJson,
  type TypedData,
} from './dtype.ts';

export type { Dtype } from './dtype.ts';

export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** A view into the file's bytes (not necessarily aligned): raw little-endian elements. */
  data: Uint8Array;
}

export interface SafetensorsFile {
  /** In the order the header lists them. */
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation's limit; a larger header is taken as corruption. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * The keys of every object in a (valid) JSON text, in order, failing on the first duplicate:
 * JSON.parse silently keeps the last one, the reference implementation rejects the file.
 * Returns the top-level keys.
 */
function keysInOrder(text: string): string[] {
  const top: string[] = [];
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      let j = i + 1;
      while (j < text.length && ' \t\n\r'.includes(text[j]!)) j++;
      const keys = stack[stack.length - 1];
      if (text[j] === ':' && keys) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (keys.has(key)) {
          throw new SafetensorsError(`header has the key ${showJson(key)} twice`);
        }
        keys.add(key);
        if (stack.length === 1) top.push(key);
      }
    }
  }
  return top;
}

/** Parses a safetensors file. `bytes` must stay alive and unchanged while the views are used. */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) {
    throw new SafetensorsError(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header length ${n} exceeds the 100 MB limit (corrupt or not a safetensors file)`);
  }
  if (8 + n > bytes.length) {
    throw new SafetensorsError(`header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw new SafetensorsError('header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) throw new SafetensorsError('header is not a JSON object');
  const names = keysInOrder(text);

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorEntry>();
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const name of names) {
    const raw = header[name];
    if (name === METADATA_KEY) {
      metadata = checkMetadata(raw);
      continue;
    }
    const what = `tensor ${showJson(name)}`;
    if (!isObject(raw)) throw new SafetensorsError(`${what}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isDtype(dtype)) {
      throw new SafetensorsError(`${what}: unknown dtype ${showJson(dtype)} (supported: ${DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape)) throw new SafetensorsError(`${what}: shape is not an array`);
    const count = elementCount(shape);
    if (typeof count === 'string') throw new SafetensorsError(`${what}: shape ${showJson(shape)}: ${count}`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new SafetensorsError(`${what}: data_offsets ${showJson(offsets)} is not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength) {
      throw new SafetensorsError(
        `${what}: data_offsets [${begin}, ${end}] out of range (the data section has ${dataLength} bytes)`,
      );
    }
    const expected = count * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        `${what}: shape ${showJson(shape)} of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    ranges.push({ name, begin, end });
    const data = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { name, dtype, shape: shape as number[], data });
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let previous = '';
  for (const r of ranges) {
    if (r.begin < at) {
      throw new SafetensorsError(`tensor ${showJson(r.name)} overlaps tensor ${showJson(previous)}`);
    }
    if (r.begin > at) {
      throw new SafetensorsError(`hole of ${r.begin - at} bytes in the data before tensor ${showJson(r.name)}`);
    }
    at = r.end;
    previous = r.name;
  }
  if (at !== dataLength) {
    throw new SafetensorsError(`${dataLength - at} bytes after the last tensor's data (the data must be covered exactly)`);
  }
  return { tensors, metadata };
}

function checkMetadata(raw: unknown): Record<string, string> {
  if (raw === null) return {};
  if (!isObject(raw)) throw new SafetensorsError('__metadata__ is not an object');
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(`__metadata__ value for ${showJson(k)} is not a string (${showJson(v)})`);
    }
  }
  return raw as Record<string, string>;
}

/** The tensor as float32 (a fresh array): F16/BF16/F64/integers/bool converted. */
export function toFloat32(entry: TensorEntry): Float32Array {
  return bytesToFloat32(entry.dtype, entry.data);
}

// ---------------------------------------------------------------------------------------
// Writing

/** The typed arrays a tensor can be written from (the same set `dtype.ts` reads into). */
export type TensorData = TypedData;

export interface TensorInput {
  name: string;
  /**
   * Defaults to the array's natural dtype (Float32Array F32, Float64Array F64, BigInt64Array
   * I64, Int32Array I32, Int16Array I16, Int8Array I8, Uint8Array U8). Float32Array or
   * Float64Array data given F16/BF16/F32/F64 is converted (round to nearest even); a
   * Uint16Array is taken as F16 or BF16 bits; a Uint8Array with any dtype is raw bytes.
   */
  dtype?: Dtype;
  shape: number[];
  data: TensorData;
}

function naturalDtype(data: TensorData): Dtype | null {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return 'U8';
  return null; // Uint16Array: F16 or BF16, the caller must say which
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The tensor's little-endian bytes in `dtype`: a view when no conversion is needed. */
function encode(t: TensorInput, dtype: Dtype, count: number, what: string): Uint8Array {
  const { data } = t;
  const natural = naturalDtype(data);
  const isFloat = dtype === 'F32' || dtype === 'F64' || dtype === 'F16' || dtype === 'BF16';
  let bytes: Uint8Array;
  if (data instanceof Uint8Array || natural === dtype || (data instanceof Uint16Array && (dtype === 'F16' || dtype === 'BF16'))) {
    bytes = bytesOf(data);
  } else if ((data instanceof Float32Array || data instanceof Float64Array) && isFloat) {
    if (data.length !== count) {
      throw new SafetensorsError(`${what}: shape ${showJson(t.shape)} has ${count} elements but the data has ${data.length}`);
    }
    if (dtype === 'F32') return bytesOf(Float32Array.from(data));
    if (dtype === 'F64') return bytesOf(Float64Array.from(data));
    const half = new Uint16Array(count);
    const convert = dtype === 'F16' ? numberToF16 : numberToBf16;
    for (let i = 0; i < count; i++) half[i] = convert(data[i]!);
    return bytesOf(half);
  } else {
    throw new SafetensorsError(`${what}: cannot store a ${data.constructor.name} as ${dtype}`);
  }
  if (bytes.length !== count * DTYPE_BYTES[dtype]) {
    throw new SafetensorsError(
      `${what}: shape ${showJson(t.shape)} of ${dtype} needs ${count * DTYPE_BYTES[dtype]} bytes but the data has ${bytes.length}`,
    );
  }
  return bytes;
}

/**
 * A safetensors file as pieces: the first is the 8-byte length plus the header, then one
 * piece per tensor in file order. Pieces are views of the callers' arrays where no conversion
 * is needed, so a large file can be written piece by piece without one big allocation.
 */
export function writeSafetensorsParts(tensors: readonly TensorInput[], metadata?: Record<string, string>): Uint8Array[] {
  const seen = new Set<string>();
  const prepared = tensors.map((t) => {
    const what = `tensor ${showJson(t.name)}`;
    if (t.name === METADATA_KEY) throw new SafetensorsError(`a tensor cannot be named ${METADATA_KEY}`);
    if (seen.has(t.name)) throw new SafetensorsError(`${what} given twice`);
    seen.add(t.name);
    const dtype = t.dtype ?? naturalDtype(t.data);
    if (!dtype) throw new SafetensorsError(`${what}: give dtype F16 or BF16 for Uint16Array data`);
    if (!isDtype(dtype)) throw new SafetensorsError(`${what}: unknown dtype ${showJson(dtype)}`);
    const count = elementCount(t.shape);
    if (typeof count === 'string') throw new SafetensorsError(`${what}: shape ${showJson(t.shape)}: ${count}`);
    return { name: t.name, dtype, shape: t.shape, bytes: encode(t, dtype, count, what) };
  });
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`__metadata__ value for ${showJson(k)} is not a string`);
    }
  }

  // Data order: element size descending (stable), so each tensor is aligned to its size.
  const order = prepared.map((_, i) => i).sort((a, b) => DTYPE_BYTES[prepared[b]!.dtype] - DTYPE_BYTES[prepared[a]!.dtype] || a - b);
  const offsets = new Array<[number, number]>(prepared.length);
  let at = 0;
  for (const i of order) {
    offsets[i] = [at, at + prepared[i]!.bytes.length];
    at += prepared[i]!.bytes.length;
  }

  // Built by hand so the header lists the tensors in the caller's order (JSON.stringify of
  // an object would move integer-like names first).
  const fields: string[] = [];
  if (metadata) fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  prepared.forEach((t, i) => {
    fields.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: offsets[i] })}`);
  });
  const json = utf8Encoder.encode(`{${fields.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, padded % 2 ** 32, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  head.set(json, 8);
  return [head, ...order.map((i) => prepared[i]!.bytes)];
}

/** A whole safetensors file in one array (see `writeSafetensorsParts`). */
export function writeSafetensors(tensors: readonly TensorInput[], metadata?: Record<string, string>): Uint8Array {
  const parts = writeSafetensorsParts(tensors, metadata);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
