/**
 * A restricted unpickler: a stack machine for the opcodes that `torch.save` (pickle
 * protocol 2) and newer protocols emit for plain data, which NEVER imports, calls or evaluates
 * anything. The opcodes that would run code (GLOBAL, STACK_GLOBAL, REDUCE, NEWOBJ, BUILD,
 * BINPERSID) are all routed through `PickleHooks`, whose owner decides, from an allow-list,
 * what each global means as plain data; a global it does not know is refused at once.
 *
 * Python values become: None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
 * float -> number, str -> string, bytes -> Uint8Array, list and tuple -> array, set and
 * frozenset -> array, dict -> a plain object (non-string keys become their Python repr:
 * 1 -> "1", (1, 2) -> "(1, 2)"). Keys are defined as own properties, so a key named
 * "__proto__" is just a key.
 *
 * Bounds, so a hostile file gives an error rather than a crash or a hang: every length is
 * checked against the bytes left, the number of values pushed and memo entries are capped
 * (`maxObjects`), and the result is walked once (no recursion) to reject reference cycles and
 * nesting deeper than `maxDepth`. Everything is linear in the pickle's size.
 */

import { checkStructure } from './pickle-structure.ts';
import { defineKey, isDict, isList, isSet, keyString, newDict, newList, newSet, PickleError } from './pickle-values.ts';

export interface PickleHooks {
  /** GLOBAL / STACK_GLOBAL: the value standing for `module.name`; throw to refuse it. */
  global(module: string, name: string): unknown;
  /** REDUCE (`callable(*args)`) and NEWOBJ (`cls.__new__(cls, *args)`) on a hook's value. */
  call(callable: unknown, args: unknown[], opcode: 'REDUCE' | 'NEWOBJ'): unknown;
  /** BUILD: `obj.__setstate__(state)`; returns nothing, mutates `obj` or throws. */
  build(obj: unknown, state: unknown): void;
  /** BINPERSID: the object a persistent id stands for (torch: a storage). */
  persistentLoad(pid: unknown): unknown;
}

export interface PickleLimits {
  /** Most values pushed (and memo entries) before giving up (default 10,000,000). */
  maxObjects?: number;
  /** Deepest nesting of containers in the result (default 1000). */
  maxDepth?: number;
}

const OP_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x4e: 'NONE',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x4a: 'BININT', 0x4b: 'BININT1', 0x4d: 'BININT2',
  0x8a: 'LONG1', 0x8b: 'LONG4', 0x47: 'BINFLOAT', 0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8', 0x96: 'BYTEARRAY8', 0x7d: 'EMPTY_DICT', 0x64: 'DICT',
  0x5d: 'EMPTY_LIST', 0x6c: 'LIST', 0x29: 'EMPTY_TUPLE', 0x74: 'TUPLE', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x73: 'SETITEM', 0x75: 'SETITEMS', 0x61: 'APPEND', 0x65: 'APPENDS', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x94: 'MEMOIZE', 0x68: 'BINGET', 0x6a: 'LONG_BINGET', 0x63: 'GLOBAL',
  0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x62: 'BUILD',
  0x51: 'BINPERSID', 0x80: 'PROTO', 0x95: 'FRAME',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Unpickles `bytes` through `hooks`. Throws `PickleError` (or whatever a hook throws). */
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, limits: PickleLimits = {}): unknown {
  const maxObjects = limits.maxObjects ?? 10_000_000;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let op = 0;
  let opAt = 0;
  let pushed = 0;

  const fail = (message: string): never => {
    throw new PickleError(`${message} (opcode ${OP_NAMES[op] ?? `0x${op.toString(16)}`} at byte ${opAt})`);
  };
  const take = (n: number): Uint8Array => {
    if (n > bytes.length - pos) fail(`needs ${n} bytes but only ${bytes.length - pos} remain`);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (): number => take(1)[0]!;
  const u32 = (): number => (take(4), view.getUint32(pos - 4, true));
  const u64 = (): number => {
    take(8);
    const v = view.getUint32(pos - 4, true) * 2 ** 32 + view.getUint32(pos - 8, true);
    return Number.isSafeInteger(v) ? v : fail(`length ${v} is out of range`);
  };
  const push = (v: unknown): void => {
    if (++pushed > maxObjects) fail(`more than ${maxObjects} objects (limit maxObjects)`);
    stack.push(v);
  };
  const pop = (): unknown => (stack.length > (marks.at(-1) ?? 0) ? stack.pop() : fail('stack underflow'));
  const top = (): unknown => (stack.length > (marks.at(-1) ?? 0) ? stack[stack.length - 1] : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const text = (n: number): string => {
    const raw = take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1000) fail('GLOBAL name line is unterminated');
    return latin1.decode(take(end - pos + 1)).slice(0, -1);
  };
  const memoize = (index: number): void => {
    if (!memo.has(index) && memo.size >= maxObjects) fail(`memo grows past ${maxObjects} entries (limit maxObjects)`);
    memo.set(index, top());
  };
  const long = (n: number): number | bigint => {
    const b = take(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!isDict(target)) fail('SETITEM on something that is not a dict');
    if (items.length % 2) fail('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) defineKey(target as object, keyString(items[i]), items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]): void => {
    if (!isList(target) && !(op === 0x90 && isSet(target))) {
      fail(op === 0x90 ? 'ADDITEMS on something that is not a set' : 'APPEND on something that is not a list');
    }
    for (const item of items) (target as unknown[]).push(item);
  };

  for (;;) {
    if (pos >= bytes.length) throw new PickleError('data ends without a STOP opcode (truncated?)');
    opAt = pos;
    op = bytes[pos++]!;
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported pickle protocol');
        break;
      case 0x95: // FRAME: a length prefix for buffering; the opcodes follow inline
        u64();
        break;
      case 0x2e: {
        // STOP
        if (stack.length !== 1 || marks.length) fail('STOP with a malformed stack');
        const result = stack[0];
        checkStructure(result, limits.maxDepth ?? 1000);
        return result;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        take(4);
        push(view.getInt32(pos - 4, true));
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        take(2);
        push(view.getUint16(pos - 2, true));
        break;
      case 0x8a: // LONG1
        push(long(u8()));
        break;
      case 0x8b: {
        // LONG4: Python allows huge ints; nothing torch writes needs more than a few bytes.
        const n = u32();
        if (n > 1024) fail(`integer of ${n} bytes is too large`);
        push(long(n));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        take(8);
        push(view.getFloat64(pos - 8, false));
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str, read as latin-1 as Python 3 does with encoding='latin1')
        push(latin1.decode(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(take(u64()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        push(newDict());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = newDict();
        setItems(d, items);
        push(d);
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(newList([]));
        break;
      case 0x6c: // LIST
        push(newList(popMark()));
        break;
      case 0x29: // EMPTY_TUPLE
        push([]);
        break;
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x85: // TUPLE1
        push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push([pop(), b, c]);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(newSet([]));
        break;
      case 0x91: // FROZENSET
        push(popMark());
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memoize(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoize(u32());
        break;
      case 0x94: // MEMOIZE
        memoize(memo.size);
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
        push(memo.get(index));
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        push(hooks.global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(hooks.global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        if (!Array.isArray(args) || isList(args)) fail('REDUCE arguments are not a tuple');
        push(hooks.call(callable, args as unknown[], 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args) || isList(args)) fail('NEWOBJ arguments are not a tuple');
        push(hooks.call(cls, args as unknown[], 'NEWOBJ'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX: keyword arguments are not supported (nothing torch saves uses them)
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args) || isList(args)) fail('NEWOBJ_EX arguments are not a tuple');
        if (!isDict(kwargs) || Object.keys(kwargs).length) fail('NEWOBJ_EX with keyword arguments is not supported');
        push(hooks.call(cls, args as unknown[], 'NEWOBJ'));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        hooks.build(top(), state);
        break;
      }
      case 0x51: // BINPERSID
        push(hooks.persistentLoad(pop()));
        break;
      default:
        fail('unsupported opcode (this reader handles only what torch.save writes for plain data)');
    }
  }
}

