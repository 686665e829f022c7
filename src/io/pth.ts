/**
 * PyTorch `.pth` files (the zip format of torch.save, PyTorch >= 1.6) read WITHOUT running
 * anything from the file.
 *
 * Layout: a zip archive with `<prefix>/data.pkl` (a pickle of the saved object),
 * `<prefix>/data/<key>` (the raw bytes of each storage), `<prefix>/version` and sometimes
 * `<prefix>/byteorder`. The pickle names storages by persistent id
 * `('storage', torch.FloatStorage, key, location, numel)` and rebuilds tensors with
 * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
 *
 * A pickle can name any Python callable, and `torch.load` (without weights_only) calls it:
 * that is how a .pth file runs code. Here every global the pickle names is looked up in an
 * ALLOW-LIST of things that build plain data (OrderedDict, tensor rebuilders, storage types,
 * argparse.Namespace, sets, bytes, torch.device); anything else is refused before any further
 * byte is read, and even allowed names only select a data constructor implemented here.
 *
 * Result: the unpickled structure (see pickle.ts for how Python values map), with tensors as
 * `PthTensor`: a contiguous row-major copy of the view (strides and storage offset honoured;
 * views sharing a storage each get their own copy). F16/BF16 data stay 16-bit patterns.
 */
import { type Dtype, DTYPE_BYTES, bytesToFloat32, elementCount, showJson, typedView, type TypedData } from './dtype.ts';
import { unpickle } from './pickle.ts';
import { defineKey, isDict, newDict, PickleError } from './pickle-values.ts';
import { ZipError, ZipReader } from './zip.ts';

export type { Dtype } from './dtype.ts';

export class PthError extends Error {
  constructor(message: string) {
    super(`pth: ${message}`);
    this.name = 'PthError';
  }
}

/** A tensor from a .pth file. `data` is contiguous (row-major over `shape`). */
export class PthTensor {
  constructor(
    readonly dtype: Dtype,
    readonly shape: number[],
    /** The strides (in elements) of the view as saved; `data` itself is contiguous. */
    readonly strides: number[],
    /** The view's offset (in elements) into its storage as saved. */
    readonly storageOffset: number,
    readonly data: TypedData,
  ) {}
}

/** The tensor's values as float32 (a fresh array). */
export function pthToFloat32(t: PthTensor): Float32Array {
  return bytesToFloat32(t.dtype, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

export interface PthOptions {
  /** Most pickle values / memo entries (default 10,000,000). */
  maxObjects?: number;
  /** Deepest container nesting (default 1000). */
  maxDepth?: number;
  /** Largest zip entry accepted (default 4 GiB). */
  maxEntryBytes?: number;
  /**
   * Total bytes of tensor copies and inflated (deflated-entry) storages; default 4x the file
   * + 64 MiB: views can expand data, and deflate can hide it.
   */
  maxTensorBytes?: number;
  /** Check zip CRCs (default true). */
  verifyCrc?: boolean;
}

type GlobalKind =
  | 'OrderedDict'
  | 'rebuild_tensor_v2'
  | 'rebuild_parameter'
  | 'rebuild_parameter_with_state'
  | 'rebuild_from_type_v2'
  | 'tensor_type'
  | 'storage'
  | 'device'
  | 'Namespace'
  | 'set'
  | 'bytes'
  | 'codecs_encode';

/** What an allowed global stands for: a tag for a data constructor implemented below. */
class AllowedGlobal {
  constructor(
    readonly name: string,
    readonly kind: GlobalKind,
    readonly dtype?: Dtype,
  ) {}
}

const STORAGE_DTYPES: Record<string, Dtype> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const ALLOWED = new Map<string, AllowedGlobal>();
const allow = (name: string, kind: GlobalKind, dtype?: Dtype): void => {
  ALLOWED.set(name, new AllowedGlobal(name, kind, dtype));
};
allow('collections.OrderedDict', 'OrderedDict');
allow('torch._utils._rebuild_tensor_v2', 'rebuild_tensor_v2');
allow('torch._utils._rebuild_parameter', 'rebuild_parameter');
allow('torch._utils._rebuild_parameter_with_state', 'rebuild_parameter_with_state');
allow('torch._tensor._rebuild_from_type_v2', 'rebuild_from_type_v2');
allow('torch.Tensor', 'tensor_type');
allow('torch.nn.parameter.Parameter', 'tensor_type');
for (const [storage, dtype] of Object.entries(STORAGE_DTYPES)) {
  allow(`torch.${storage}`, 'storage', dtype);
  allow(`torch.cuda.${storage}`, 'storage', dtype);
}
allow('torch.device', 'device');
allow('argparse.Namespace', 'Namespace');
allow('builtins.set', 'set');
allow('builtins.frozenset', 'set');
allow('builtins.bytes', 'bytes');
allow('builtins.bytearray', 'bytes');
allow('_codecs.encode', 'codecs_encode');

/** Python 2 module names that protocol-2 pickles use for Python 3 builtins. */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** A storage: `numel` elements of `dtype`, the raw little- or big-endian bytes of a zip entry. */
class Storage {
  constructor(
    readonly key: string,
    readonly dtype: Dtype,
    readonly numel: number,
    readonly bytes: Uint8Array,
  ) {}
}

function describe(x: unknown): string {
  if (x instanceof AllowedGlobal) return x.name;
  if (x instanceof PthTensor) return 'a tensor';
  if (x instanceof Storage) return 'a storage';
  if (Array.isArray(x)) return 'a list/tuple';
  return x === null ? 'None' : typeof x === 'object' ? 'an object' : `a ${typeof x}`;
}

function isIntList(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
}

/** Copies a strided view of `src` (elements of `size` bytes) into a contiguous array. */
function gather(src: Uint8Array, size: number, offset: number, shape: number[], strides: number[], count: number): Uint8Array {
  const out = new Uint8Array(count * size);
  if (count === 0) return out;
  // Contiguous (dims of size 1 may have any stride): one copy.
  let expected = 1;
  let contiguous = true;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expected) contiguous = false;
    expected *= shape[d]!;
  }
  if (contiguous) {
    out.set(src.subarray(offset * size, (offset + count) * size));
    return out;
  }
  // Odometer over all dims but the last; each innermost row is copied whole when its stride
  // is 1, element by element otherwise.
  const nd = shape.length;
  const rowLen = shape[nd - 1]!;
  const rowStride = strides[nd - 1]!;
  const idx = new Array<number>(nd - 1).fill(0);
  let base = offset;
  for (let o = 0; o < count; o += rowLen) {
    if (rowStride === 1) out.set(src.subarray(base * size, (base + rowLen) * size), o * size);
    else {
      for (let j = 0; j < rowLen; j++) {
        const s = (base + j * rowStride) * size;
        for (let b = 0; b < size; b++) out[(o + j) * size + b] = src[s + b]!;
      }
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) {
        base += strides[d]!;
        break;
      }
      base -= (shape[d]! - 1) * strides[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Reads a torch.save zip file. Throws `PthError` for anything malformed or not allowed. */
export function readPth(bytes: Uint8Array, opts: PthOptions = {}): unknown {
  try {
    return load(bytes, opts);
  } catch (e) {
    if (e instanceof ZipError || e instanceof PickleError) throw new PthError(e.message);
    throw e;
  }
}

function load(bytes: Uint8Array, opts: PthOptions): unknown {
  const archive = new PthArchive(bytes, opts);
  const result = unpickle(archive.zip.read(`${archive.prefix}data.pkl`), archive, { maxObjects: opts.maxObjects, maxDepth: opts.maxDepth });
  if (result instanceof Storage) throw new PthError('the file holds a bare storage, not tensors');
  return result;
}

/**
 * One torch.save archive being unpickled: its zip entries, byte order and tensor-memory budget,
 * and the hooks `unpickle` calls for globals, calls, BUILD and persistent ids (storages).
 */
class PthArchive {
  readonly zip: ZipReader;
  readonly prefix: string;
  private bigEndian = false;
  private maxTensorBytes: number;
  private tensorBytes = 0;
  private storages = new Map<string, Storage>();
  private namespaces = new WeakSet<object>();

  constructor(bytes: Uint8Array, opts: PthOptions) {
    const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b;
    if (!isZip && bytes.length >= 2 && bytes[0] === 0x80 && bytes[1]! <= 5) {
      throw new PthError(
        'this is the legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False), ' +
          'which is not supported: load and re-save it with a newer PyTorch',
      );
    }
    this.zip = new ZipReader(bytes, { maxEntryBytes: opts.maxEntryBytes, verifyCrc: opts.verifyCrc });
    // Like torch: the archive's top folder is the first entry's, whatever its name.
    const first = this.zip.entries.keys().next().value;
    const slash = first?.indexOf('/') ?? -1;
    if (first === undefined || slash < 0) throw new PthError('not a torch.save archive: no <name>/data.pkl');
    this.prefix = first.slice(0, slash + 1);
    if (!this.zip.entries.has(`${this.prefix}data.pkl`)) throw new PthError(`not a torch.save archive: no ${this.prefix}data.pkl`);
    if (this.zip.entries.has(`${this.prefix}byteorder`)) {
      const order = new TextDecoder().decode(this.zip.read(`${this.prefix}byteorder`));
      if (order !== 'little' && order !== 'big') throw new PthError(`unknown byteorder '${order.slice(0, 20)}'`);
      this.bigEndian = order === 'big';
    }

    this.maxTensorBytes = opts.maxTensorBytes ?? 4 * bytes.length + 64 * 2 ** 20;
  }

  private spend(n: number): void {
    this.tensorBytes += n;
    if (this.tensorBytes > this.maxTensorBytes) throw new PthError(`tensors need more than ${this.maxTensorBytes} bytes (limit maxTensorBytes)`);
  }

  private rebuildTensor(args: unknown[]): PthTensor {
    if (args.length !== 6 && args.length !== 7) throw new PthError(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
    const [storage, offset, shape, strides] = args;
    if (!(storage instanceof Storage)) throw new PthError(`_rebuild_tensor_v2 needs a storage, got ${describe(storage)}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      throw new PthError(`tensor storage offset ${String(offset)} is not a non-negative integer`);
    }
    if (!isIntList(shape) || !isIntList(strides) || shape.length !== strides.length) {
      throw new PthError(`tensor size ${showJson(shape)} / stride ${showJson(strides)} are not matching lists of non-negative integers`);
    }
    const count = elementCount(shape);
    if (typeof count === 'string') throw new PthError(`tensor size ${showJson(shape)}: ${count}`);
    // The last element the view touches must lie inside the storage.
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * strides[d]!;
    if (count > 0 ? last >= storage.numel : offset > storage.numel) {
      throw new PthError(
        `tensor of size ${showJson(shape)}, stride ${showJson(strides)}, offset ${offset} reaches past its storage '${storage.key}' of ${storage.numel} elements`,
      );
    }
    const size = DTYPE_BYTES[storage.dtype];
    this.spend(count * size);
    const data = gather(storage.bytes, size, offset, shape, strides, count);
    if (this.bigEndian && size > 1) swapBytes(data, size);
    return new PthTensor(storage.dtype, [...shape], [...strides], offset, typedView(storage.dtype, data));
  }

  call(callable: unknown, args: unknown[], opcode: string): unknown {
    if (!(callable instanceof AllowedGlobal)) throw new PthError(`${opcode} calls ${describe(callable)}, which is not callable`);
    const bad = (): never => {
      throw new PthError(`${callable.name} called with unexpected arguments (${args.map(describe).join(', ')})`);
    };
    switch (callable.kind) {
      case 'OrderedDict': {
        const d = newDict();
        if (args.length === 0) return d;
        // OrderedDict([(k, v), ...])
        if (args.length !== 1 || !Array.isArray(args[0])) bad();
        for (const pair of args[0] as unknown[]) {
          if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') bad();
          defineKey(d, (pair as [string, unknown])[0], (pair as unknown[])[1]);
        }
        return d;
      }
      case 'rebuild_tensor_v2':
        return this.rebuildTensor(args);
      case 'rebuild_parameter': // (data, requires_grad, backward_hooks)
      case 'rebuild_parameter_with_state': // (..., state)
        if (!(args[0] instanceof PthTensor)) bad();
        return args[0];
      case 'rebuild_from_type_v2': {
        // (func, type, args, state): a tensor (sub)class with Python attributes, which we drop.
        const [func, type, inner] = args;
        if (!(type instanceof AllowedGlobal) || type.kind !== 'tensor_type' || !Array.isArray(inner)) bad();
        if (!(func instanceof AllowedGlobal) || !func.kind.startsWith('rebuild_')) bad();
        return this.call(func, inner as unknown[], opcode);
      }
      case 'device': {
        const [type, index] = args;
        if (typeof type !== 'string' || args.length > 2) bad();
        return index === undefined || index === null ? type : `${type as string}:${String(index)}`;
      }
      case 'Namespace': {
        if (args.length) bad();
        const ns = {};
        this.namespaces.add(ns);
        return ns;
      }
      case 'set':
        if (args.length === 0) return [];
        if (args.length !== 1 || !Array.isArray(args[0])) bad();
        return [...(args[0] as unknown[])];
      case 'bytes':
        if (args.length === 0) return new Uint8Array(0);
        if (args.length !== 1 || !(args[0] instanceof Uint8Array)) bad();
        return (args[0] as Uint8Array).slice();
      case 'codecs_encode': {
        // Protocol 2 writes bytes as _codecs.encode(<latin-1 str>, 'latin1').
        const [s, encoding] = args;
        if (typeof s !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) bad();
        const out = new Uint8Array((s as string).length);
        for (let i = 0; i < out.length; i++) {
          const c = (s as string).charCodeAt(i);
          if (c > 255) bad();
          out[i] = c;
        }
        return out;
      }
      case 'tensor_type':
      case 'storage':
        throw new PthError(`${callable.name} is only allowed as a type tag, not called`);
    }
  }

  global(module: string, name: string): unknown {
    const full = `${PY2_MODULES[module] ?? module}.${name}`;
    const found = ALLOWED.get(full);
    if (!found) {
      throw new PthError(
        `refusing to load: global '${full}' is not allowed: this file may contain code ` +
          '(only tensors, state dicts and plain data are loaded; nothing in the file is run)',
      );
    }
    return found;
  }

  build(obj: unknown, state: unknown): void {
    if (typeof obj === 'object' && obj !== null && this.namespaces.has(obj)) {
      if (!isDict(state)) throw new PthError('argparse.Namespace state is not a dict');
      for (const [k, v] of Object.entries(state)) defineKey(obj, k, v);
    } else if (!isDict(obj)) {
      throw new PthError(`cannot set the state of ${describe(obj)}`);
    }
    // A dict's state is its instance attributes (torch's OrderedDict state dicts carry
    // `_metadata`, module versions); they are not items, and nothing here needs them.
  }

  persistentLoad(pid: unknown): unknown {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw new PthError('persistent id is not (\'storage\', type, key, location, numel)');
    }
    const [, type, rawKey, , numel] = pid as unknown[];
    const key = typeof rawKey === 'string' && rawKey.length > 64 ? `${rawKey.slice(0, 64)}...` : rawKey;
    if (!(type instanceof AllowedGlobal) || type.kind !== 'storage' || typeof key !== 'string' || typeof rawKey !== 'string') {
      throw new PthError(`persistent id names ${describe(type)} with key ${describe(key)}, not a storage`);
    }
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw new PthError(`storage '${key}' claims ${String(numel)} elements`);
    }
    const dtype = type.dtype!;
    const seen = this.storages.get(rawKey);
    if (seen) {
      if (seen.dtype !== dtype || seen.numel !== numel) {
        throw new PthError(`storage '${key}' is used as ${seen.numel} x ${seen.dtype} and as ${numel} x ${dtype}`);
      }
      return seen;
    }
    const entry = this.zip.entries.get(`${this.prefix}data/${rawKey}`);
    if (!entry) throw new PthError(`storage '${key}' has no entry ${this.prefix}data/${key} in the archive`);
    // Stored entries are views; inflated ones are new memory and count against the budget
    // (many directory records can point at the same deflated bytes).
    if (entry.method !== 0) this.spend(entry.size);
    const data = this.zip.read(entry.name);
    const need = numel * DTYPE_BYTES[dtype];
    if (data.length < need) {
      throw new PthError(`storage '${key}' holds ${data.length} bytes but claims ${numel} x ${dtype} (${need} bytes)`);
    }
    const storage = new Storage(key, dtype, numel, data.subarray(0, need));
    this.storages.set(rawKey, storage);
    return storage;
  }
}

/**
 * The state dict inside a loaded .pth: `obj.module ?? obj.model ?? obj.state_dict ?? obj`
 * (the official SparK checkpoint keeps it under `module`; timm-style exports are the state
 * dict itself). Only tensor entries are kept (SparK's `config` entry and the like are not).
 */
export function pthStateDict(obj: unknown): Map<string, PthTensor> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new PthError(`expected a dict at the top level, got ${describe(obj)}`);
  }
  const o = obj as Record<string, unknown>;
  const root = o.module ?? o.model ?? o.state_dict ?? o;
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new PthError(`the state dict is ${describe(root)}, not a dict`);
  }
  const out = new Map<string, PthTensor>();
  for (const [k, v] of Object.entries(root)) if (v instanceof PthTensor) out.set(k, v);
  if (!out.size) {
    const keys = Object.keys(root).slice(0, 10);
    throw new PthError(`no tensors found in the state dict (its keys: ${keys.join(', ') || 'none'})`);
  }
  return out;
}
