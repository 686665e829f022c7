/**
 * The Python values an unpickle produces (pickle.ts): which arrays are lists, sets or tuples
 * and which objects are dicts (the opcodes may mutate only the right kind), own-property keys,
 * and dict keys as Python reprs.
 */

export class PickleError extends Error {
  constructor(message: string) {
    super(`pickle: ${message}`);
    this.name = 'PickleError';
  }
}

// Containers the opcodes may mutate: Python would refuse SETITEM on a tuple, APPEND on a dict.
const dicts = new WeakSet<object>();
const lists = new WeakSet<object>();
const sets = new WeakSet<object>();

/** `items` as a Python list (APPEND may extend it; it is no tuple). */
export function newList(items: unknown[]): unknown[] {
  lists.add(items);
  return items;
}

/** `items` as a Python set (ADDITEMS may extend it). */
export function newSet(items: unknown[]): unknown[] {
  sets.add(items);
  return items;
}

export function isList(x: unknown): boolean {
  return typeof x === 'object' && x !== null && lists.has(x);
}

export function isSet(x: unknown): boolean {
  return typeof x === 'object' && x !== null && sets.has(x);
}

/** A new, empty Python dict (for hooks that construct dicts, like OrderedDict). */
export function newDict(): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  dicts.add(d);
  return d;
}

export function isDict(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && dicts.has(x);
}

/** Sets a property as an own data property (never the prototype, whatever the key). */
export function defineKey(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** A dict key as a string: Python's repr for non-strings, bounded in length. */
export function keyString(k: unknown): string {
  if (typeof k === 'string') return k;
  let out = '';
  const emit = (v: unknown): void => {
    if (out.length > 1000) throw new PickleError('dict key is too large');
    if (typeof v === 'string') out += JSON.stringify(v);
    else if (typeof v === 'number' || typeof v === 'bigint') out += String(v);
    else if (typeof v === 'boolean') out += v ? 'True' : 'False';
    else if (v === null) out += 'None';
    else if (Array.isArray(v) && !lists.has(v) && !sets.has(v)) {
      out += '(';
      v.forEach((item, i) => {
        if (i) out += ', ';
        emit(item);
      });
      out += v.length === 1 ? ',)' : ')';
    } else throw new PickleError('dict key of an unhashable or unsupported type');
  };
  emit(k);
  return out;
}

