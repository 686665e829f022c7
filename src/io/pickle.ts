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
  return new Unpickler(bytes, hooks, limits).run();
}

/** The stack machine: its state, the readers of the opcode stream, and the opcodes by kind. */
class Unpickler {
  private readonly maxObjects: number;
  private readonly view: DataView;
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private pos = 0;
  private op = 0;
  private opAt = 0;
  private pushed = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly hooks: PickleHooks,
    private readonly limits: PickleLimits,
  ) {
    this.maxObjects = limits.maxObjects ?? 10_000_000;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): unknown {
    for (;;) {
      if (this.pos >= this.bytes.length) throw new PickleError('data ends without a STOP opcode (truncated?)');
      this.opAt = this.pos;
      this.op = this.bytes[this.pos++]!;
      if (this.op === 0x2e) {
        // STOP
        if (this.stack.length !== 1 || this.marks.length) this.fail('STOP with a malformed stack');
        const result = this.stack[0];
        checkStructure(result, this.limits.maxDepth ?? 1000);
        return result;
      }
      if (!this.scalarOp() && !this.containerOp() && !this.hookOp()) {
        this.fail('unsupported opcode (this reader handles only what torch.save writes for plain data)');
      }
    }
  }

  /** Stream framing, the stack itself, and constants, numbers, strings and bytes. */
  private scalarOp(): boolean {
    switch (this.op) {
      case 0x80: // PROTO
        if (this.u8() > 5) this.fail('unsupported pickle protocol');
        return true;
      case 0x95: // FRAME: a length prefix for buffering; the opcodes follow inline
        this.u64();
        return true;
      case 0x28: // MARK
        this.marks.push(this.stack.length);
        return true;
      case 0x30: // POP
        this.pop();
        return true;
      case 0x31: // POP_MARK
        this.popMark();
        return true;
      case 0x32: // DUP
        this.push(this.top());
        return true;
      case 0x4e: // NONE
        this.push(null);
        return true;
      case 0x88: // NEWTRUE
        this.push(true);
        return true;
      case 0x89: // NEWFALSE
        this.push(false);
        return true;
      case 0x4a: // BININT
        this.take(4);
        this.push(this.view.getInt32(this.pos - 4, true));
        return true;
      case 0x4b: // BININT1
        this.push(this.u8());
        return true;
      case 0x4d: // BININT2
        this.take(2);
        this.push(this.view.getUint16(this.pos - 2, true));
        return true;
      case 0x8a: // LONG1
        this.push(this.long(this.u8()));
        return true;
      case 0x8b: {
        // LONG4: Python allows huge ints; nothing torch writes needs more than a few this.bytes.
        const n = this.u32();
        if (n > 1024) this.fail(`integer of ${n} bytes is too large`);
        this.push(this.long(n));
        return true;
      }
      case 0x47: // BINFLOAT (big-endian double)
        this.take(8);
        this.push(this.view.getFloat64(this.pos - 8, false));
        return true;
      case 0x58: // BINUNICODE
        this.push(this.text(this.u32()));
        return true;
      case 0x8c: // SHORT_BINUNICODE
        this.push(this.text(this.u8()));
        return true;
      case 0x8d: // BINUNICODE8
        this.push(this.text(this.u64()));
        return true;
      case 0x54: // BINSTRING (Python 2 str, read as latin-1 as Python 3 does with encoding='latin1')
        this.push(latin1.decode(this.take(this.u32())));
        return true;
      case 0x55: // SHORT_BINSTRING
        this.push(latin1.decode(this.take(this.u8())));
        return true;
      case 0x42: // BINBYTES
        this.push(this.take(this.u32()).slice());
        return true;
      case 0x43: // SHORT_BINBYTES
        this.push(this.take(this.u8()).slice());
        return true;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        this.push(this.take(this.u64()).slice());
        return true;
      default:
        return false;
    }
  }

  /** Dicts, lists, tuples, sets and the memo. */
  private containerOp(): boolean {
    switch (this.op) {
      case 0x7d: // EMPTY_DICT
        this.push(newDict());
        return true;
      case 0x64: {
        // DICT
        const items = this.popMark();
        const d = newDict();
        this.setItems(d, items);
        this.push(d);
        return true;
      }
      case 0x5d: // EMPTY_LIST
        this.push(newList([]));
        return true;
      case 0x6c: // LIST
        this.push(newList(this.popMark()));
        return true;
      case 0x29: // EMPTY_TUPLE
        this.push([]);
        return true;
      case 0x74: // TUPLE
        this.push(this.popMark());
        return true;
      case 0x85: // TUPLE1
        this.push([this.pop()]);
        return true;
      case 0x86: {
        // TUPLE2
        const b = this.pop();
        this.push([this.pop(), b]);
        return true;
      }
      case 0x87: {
        // TUPLE3
        const c = this.pop();
        const b = this.pop();
        this.push([this.pop(), b, c]);
        return true;
      }
      case 0x8f: // EMPTY_SET
        this.push(newSet([]));
        return true;
      case 0x91: // FROZENSET
        this.push(this.popMark());
        return true;
      case 0x73: {
        // SETITEM
        const v = this.pop();
        const k = this.pop();
        this.setItems(this.top(), [k, v]);
        return true;
      }
      case 0x75: {
        // SETITEMS
        const items = this.popMark();
        this.setItems(this.top(), items);
        return true;
      }
      case 0x61: {
        // APPEND
        const v = this.pop();
        this.append(this.top(), [v]);
        return true;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = this.popMark();
        this.append(this.top(), items);
        return true;
      }
      case 0x71: // BINPUT
        this.memoize(this.u8());
        return true;
      case 0x72: // LONG_BINPUT
        this.memoize(this.u32());
        return true;
      case 0x94: // MEMOIZE
        this.memoize(this.memo.size);
        return true;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = this.op === 0x68 ? this.u8() : this.u32();
        if (!this.memo.has(index)) this.fail(`memo entry ${index} was never stored`);
        this.push(this.memo.get(index));
        return true;
      }
      default:
        return false;
    }
  }

  /** The opcodes that would run code: each goes to a hook, which decides from its allow-list. */
  private hookOp(): boolean {
    switch (this.op) {
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = this.line();
        this.push(this.hooks.global(module, this.line()));
        return true;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
        this.push(this.hooks.global(module as string, name as string));
        return true;
      }
      case 0x52: {
        // REDUCE
        const args = this.pop();
        const callable = this.pop();
        if (!Array.isArray(args) || isList(args)) this.fail('REDUCE arguments are not a tuple');
        this.push(this.hooks.call(callable, args as unknown[], 'REDUCE'));
        return true;
      }
      case 0x81: {
        // NEWOBJ
        const args = this.pop();
        const cls = this.pop();
        if (!Array.isArray(args) || isList(args)) this.fail('NEWOBJ arguments are not a tuple');
        this.push(this.hooks.call(cls, args as unknown[], 'NEWOBJ'));
        return true;
      }
      case 0x92: {
        // NEWOBJ_EX: keyword arguments are not supported (nothing torch saves uses them)
        const kwargs = this.pop();
        const args = this.pop();
        const cls = this.pop();
        if (!Array.isArray(args) || isList(args)) this.fail('NEWOBJ_EX arguments are not a tuple');
        if (!isDict(kwargs) || Object.keys(kwargs).length) this.fail('NEWOBJ_EX with keyword arguments is not supported');
        this.push(this.hooks.call(cls, args as unknown[], 'NEWOBJ'));
        return true;
      }
      case 0x62: {
        // BUILD
        const state = this.pop();
        this.hooks.build(this.top(), state);
        return true;
      }
      case 0x51: // BINPERSID
        this.push(this.hooks.persistentLoad(this.pop()));
        return true;

      default:
        return false;
    }
  }

  private fail(message: string): never {
    throw new PickleError(`${message} (opcode ${OP_NAMES[this.op] ?? `0x${this.op.toString(16)}`} at byte ${this.opAt})`);
  }

  private take(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) this.fail(`needs ${n} bytes but only ${this.bytes.length - this.pos} remain`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(): number {
    return this.take(1)[0]!;
  }

  private u32(): number {
    this.take(4);
    return this.view.getUint32(this.pos - 4, true);
  }

  private u64(): number {
    this.take(8);
    const v = this.view.getUint32(this.pos - 4, true) * 2 ** 32 + this.view.getUint32(this.pos - 8, true);
    return Number.isSafeInteger(v) ? v : this.fail(`length ${v} is out of range`);
  }

  private push(v: unknown): void {
    if (++this.pushed > this.maxObjects) this.fail(`more than ${this.maxObjects} objects (limit maxObjects)`);
    this.stack.push(v);
  }

  private pop(): unknown {
    return this.stack.length > (this.marks.at(-1) ?? 0) ? this.stack.pop() : this.fail('stack underflow');
  }

  private top(): unknown {
    return this.stack.length > (this.marks.at(-1) ?? 0) ? this.stack[this.stack.length - 1] : this.fail('stack underflow');
  }

  private popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('no MARK on the stack');
    return this.stack.splice(m!);
  }

  private text(n: number): string {
    const raw = this.take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 1000) this.fail('GLOBAL name line is unterminated');
    return latin1.decode(this.take(end - this.pos + 1)).slice(0, -1);
  }

  private memoize(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= this.maxObjects) this.fail(`memo grows past ${this.maxObjects} entries (limit maxObjects)`);
    this.memo.set(index, this.top());
  }

  private long(n: number): number | bigint {
    const b = this.take(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!isDict(target)) this.fail('SETITEM on something that is not a dict');
    if (items.length % 2) this.fail('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) defineKey(target as object, keyString(items[i]), items[i + 1]);
  }

  private append(target: unknown, items: unknown[]): void {
    if (!isList(target) && !(this.op === 0x90 && isSet(target))) {
      this.fail(this.op === 0x90 ? 'ADDITEMS on something that is not a set' : 'APPEND on something that is not a list');
    }
    for (const item of items) (target as unknown[]).push(item);
  }
}
