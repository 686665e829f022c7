/**
 * Reads the struct type of a WGSL file's `var<uniform>` and packs a launch's named values
 * into it, by the WGSL layout rules, so ops pass `{ n, C, plane }` instead of words in
 * declaration order.
 *
 * Fields may be u32, i32, f32 or vecN of those (vec2 aligned to 8 bytes, vec3 and vec4 to 16,
 * a vec3 taking 12). Fields whose names begin with `_` are padding: written as 0, never given.
 * The packed block is the struct's size rounded up to 16 bytes (at least 16): a uniform
 * binding's size must cover the struct, and 16 keeps each block's data aligned like the
 * struct's largest member could need.
 */
import { stripComments } from './wgsl-source.ts';

export type ScalarKind = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  kind: ScalarKind;
  /** 1 for a scalar, N for vecN. */
  components: number;
  /** Byte offset in the struct. */
  offset: number;
  /** A `_`-named field: written as 0, not given by the caller. */
  padding: boolean;
}

export interface UniformLayout {
  /** The uniform variable's name (`params`) and its struct type's name. */
  variable: string;
  struct: string;
  fields: readonly UniformField[];
  /** Bytes of the packed block: the struct's size rounded up to 16. */
  size: number;
}

/** What a launch gives: a number for a scalar field, N numbers for a vecN. */
export type UniformValues = Readonly<Record<string, number | readonly number[]>>;

const UNIFORM_VAR = /var<\s*uniform\s*>\s*(\w+)\s*:\s*(\w+)/g;
const SCALARS = new Set<string>(['u32', 'i32', 'f32']);
const SHORT_SUFFIX: Record<string, ScalarKind> = { u: 'u32', i: 'i32', f: 'f32' };

/** The layout of the file's uniform struct, or null when it declares no `var<uniform>`. */
export function parseUniformLayout(code: string): UniformLayout | null {
  const text = stripComments(code);
  const vars = [...text.matchAll(UNIFORM_VAR)];
  if (vars.length === 0) return null;
  if (vars.length > 1) throw new Error(`shader declares ${vars.length} var<uniform>; launches fill exactly one`);
  const [, variable, struct] = vars[0]!;
  const body = new RegExp(`struct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(text);
  if (!body) throw new Error(`var<uniform> ${variable}: type '${struct}' is not a struct declared in the file`);
  const fields: UniformField[] = [];
  let end = 0;
  let align = 4;
  for (const member of topLevelMembers(body[1]!)) {
    const decl = member.trim();
    if (decl === '') continue;
    const m = /^(\w+)\s*:\s*([\w<>,\s]+)$/.exec(decl);
    if (!m) throw new Error(`struct ${struct}: cannot read member '${decl}' (member attributes such as @align are not supported)`);
    const name = m[1]!;
    const { kind, components } = fieldType(struct, name, m[2]!.replace(/\s+/g, ''));
    const fieldAlign = components === 1 ? 4 : components === 2 ? 8 : 16;
    const offset = Math.ceil(end / fieldAlign) * fieldAlign;
    fields.push({ name, kind, components, offset, padding: name.startsWith('_') });
    end = offset + 4 * components;
    align = Math.max(align, fieldAlign);
  }
  if (fields.length === 0) throw new Error(`struct ${struct} has no members`);
  const structSize = Math.ceil(end / align) * align;
  return { variable: variable!, struct: struct!, fields, size: Math.max(16, Math.ceil(structSize / 16) * 16) };
}

/** The struct body split at commas outside `<...>` (a member may be `array<u32, 4>`). */
function topLevelMembers(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '<') depth++;
    else if (body[i] === '>') depth--;
    else if (body[i] === ',' && depth === 0) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out;
}

function fieldType(struct: string, name: string, type: string): { kind: ScalarKind; components: number } {
  if (SCALARS.has(type)) return { kind: type as ScalarKind, components: 1 };
  const long = /^vec([234])<(u32|i32|f32)>$/.exec(type);
  if (long) return { kind: long[2] as ScalarKind, components: Number(long[1]) };
  const short = /^vec([234])([uif])$/.exec(type);
  if (short) return { kind: SHORT_SUFFIX[short[2]!]!, components: Number(short[1]) };
  throw new Error(`struct ${struct}: member '${name}' has type ${type}; uniforms take u32, i32, f32 and vecN of those`);
}

/**
 * Packs `values` into `layout`. Every field but padding must be given, and nothing else;
 * u32 and i32 values must be integers in range. Errors name `where` (shader and entry point)
 * and the field.
 */
export function packUniforms(layout: UniformLayout, values: UniformValues, where: string): Uint8Array<ArrayBuffer> {
  const buffer = new ArrayBuffer(layout.size);
  const view = new DataView(buffer);
  let given = 0;
  for (const f of layout.fields) {
    const v = values[f.name];
    if (f.padding) {
      if (v !== undefined) throw new Error(`${where}: uniform field '${f.name}' is padding and takes no value`);
      continue;
    }
    if (v === undefined) throw new Error(`${where}: uniform field '${f.name}' (${typeName(f)}) was not given`);
    given++;
    const parts = typeof v === 'number' ? [v] : v;
    if (parts.length !== f.components || (f.components === 1) !== (typeof v === 'number')) {
      throw new Error(`${where}: uniform field '${f.name}' is ${typeName(f)}, got ${JSON.stringify(v)}`);
    }
    parts.forEach((x, k) => writeScalar(view, f.offset + 4 * k, f, x, where));
  }
  if (Object.keys(values).length !== given) {
    const unknown = Object.keys(values).filter((k) => !layout.fields.some((f) => f.name === k));
    throw new Error(`${where}: struct ${layout.struct} has no field ${unknown.map((k) => `'${k}'`).join(', ')}`);
  }
  return new Uint8Array(buffer);
}

function writeScalar(view: DataView, at: number, f: UniformField, x: number, where: string): void {
  if (typeof x !== 'number') throw new Error(`${where}: uniform field '${f.name}' takes numbers, got ${typeof x}`);
  if (f.kind === 'f32') {
    view.setFloat32(at, x, true);
    return;
  }
  const [lo, hi] = f.kind === 'u32' ? [0, 0xffffffff] : [-0x80000000, 0x7fffffff];
  if (!Number.isInteger(x) || x < lo || x > hi) {
    throw new Error(`${where}: uniform field '${f.name}' is ${f.kind}, got ${x} (an integer in [${lo}, ${hi}] is needed)`);
  }
  if (f.kind === 'u32') view.setUint32(at, x, true);
  else view.setInt32(at, x, true);
}

function typeName(f: UniformField): string {
  return f.components === 1 ? f.kind : `vec${f.components}<${f.kind}>`;
}
