/**
 * Uniform structs read from WGSL and packed by field name: offsets and sizes by the WGSL
 * layout rules, every shipped shader's struct readable, and each caller mistake (a field left
 * out, an unknown name, a non-integer or out-of-range integer, a padding field given) an
 * error that names the launch and the field.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { packUniforms, parseUniformLayout } from '../../src/gpu/wgsl-uniforms.ts';
import { withIncludes } from '../../src/util/shader-includes.ts';

const WHERE = 'demo:main';

function layoutOf(fields: string): ReturnType<typeof parseUniformLayout> {
  return parseUniformLayout(`struct P {\n${fields}\n}\n@group(0) @binding(0) var<uniform> params: P;`);
}

describe('uniform structs by name', () => {
  it('lays out scalars and vectors by WGSL alignment and rounds the block to 16 bytes', () => {
    const l = layoutOf('a: u32, b: vec2<f32>, c: i32, d: vec3u, e: f32, f: vec4<i32>, g: u32');
    const at = Object.fromEntries(l!.fields.map((f) => [f.name, f.offset]));
    // vec2 aligns to 8, vec3/vec4 to 16; a vec3 is 12 bytes so a scalar may follow in its last 4.
    expect(at).toEqual({ a: 0, b: 8, c: 16, d: 32, e: 44, f: 48, g: 64 });
    expect(l!.size).toBe(80);
    expect(layoutOf('a: u32')!.size).toBe(16);
    expect(layoutOf('a: u32, b: u32, c: u32, d: u32, e: f32')!.size).toBe(32);
  });

  it('packs by name, whatever the order of the given object, with padding as zero', () => {
    const l = layoutOf('n: u32, // rows\n  shift: i32, _pad0: u32, scale: f32, v: vec2<u32>');
    const bytes = packUniforms(l!, { v: [7, 8], scale: 0.5, shift: -3, n: 0xffffffff }, WHERE);
    expect(bytes.byteLength).toBe(32);
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint32(0, true)).toBe(0xffffffff);
    expect(dv.getInt32(4, true)).toBe(-3);
    expect(dv.getUint32(8, true)).toBe(0);
    expect(dv.getFloat32(12, true)).toBe(0.5);
    expect([dv.getUint32(16, true), dv.getUint32(20, true)]).toEqual([7, 8]);
  });

  it('names the launch and the field for each caller mistake', () => {
    const l = layoutOf('n: u32, shift: i32, scale: f32, _pad: u32')!;
    const ok = { n: 1, shift: 0, scale: 1 };
    expect(() => packUniforms(l, { n: 1, shift: 0 }, WHERE)).toThrow(/demo:main: uniform field 'scale' \(f32\) was not given/);
    expect(() => packUniforms(l, { ...ok, count: 2 }, WHERE)).toThrow(/demo:main: struct P has no field 'count'/);
    expect(() => packUniforms(l, { ...ok, n: 1.5 }, WHERE)).toThrow(/demo:main: uniform field 'n' is u32, got 1.5/);
    expect(() => packUniforms(l, { ...ok, n: -1 }, WHERE)).toThrow(/'n' is u32, got -1/);
    expect(() => packUniforms(l, { ...ok, n: 2 ** 32 }, WHERE)).toThrow(/'n' is u32, got 4294967296/);
    expect(() => packUniforms(l, { ...ok, shift: 2 ** 31 }, WHERE)).toThrow(/'shift' is i32/);
    expect(() => packUniforms(l, { ...ok, shift: 0.25 }, WHERE)).toThrow(/'shift' is i32/);
    expect(() => packUniforms(l, { ...ok, _pad: 0 }, WHERE)).toThrow(/'_pad' is padding/);
    expect(() => packUniforms(l, { ...ok, n: [1] }, WHERE)).toThrow(/'n' is u32, got \[1\]/);
    const v = layoutOf('v: vec3<f32>')!;
    expect(() => packUniforms(v, { v: [1, 2] }, WHERE)).toThrow(/'v' is vec3<f32>/);
    expect(() => packUniforms(v, { v: 1 }, WHERE)).toThrow(/'v' is vec3<f32>/);
  });

  it('refuses structs it cannot pack and files with more than one uniform', () => {
    expect(() => layoutOf('a: array<u32, 4>')).toThrow(/struct P: member 'a' has type array<u32,4>/);
    expect(() => layoutOf('@align(16) a: u32')).toThrow(/cannot read member/);
    expect(() => layoutOf('flag: bool')).toThrow(/'flag' has type bool/);
    expect(parseUniformLayout('@group(0) @binding(0) var<storage, read> x: array<f32>;')).toBeNull();
    expect(() => parseUniformLayout('struct P { a: u32 }\nvar<uniform> p: P;\nvar<uniform> q: P;')).toThrow(/2 var<uniform>/);
    expect(() => parseUniformLayout('var<uniform> p: Missing;')).toThrow(/'Missing' is not a struct/);
  });

  it('reads the uniform struct of every shader in shaders/', () => {
    const dir = new URL('../../shaders/', import.meta.url);
    const read = (name: string) => readFileSync(new URL(`${name}.wgsl`, dir), 'utf8');
    const all = readdirSync(dir).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5));
    // Snippets pulled in by `// #include` lines are parts of other shaders, not pipelines.
    const snippets = new Set(all.flatMap((f) => [...read(f).matchAll(/^\/\/ #include "(.+)\.wgsl"$/gm)].map((m) => m[1]!)));
    const files = all.filter((f) => !snippets.has(f));
    expect(snippets.size).toBeGreaterThan(0);
    expect(files.length).toBeGreaterThan(10);
    const load = withIncludes(read);
    for (const f of files) {
      const layout = parseUniformLayout(load(f));
      expect(layout, f).not.toBeNull();
      expect(layout!.variable, f).toBe('params');
      expect(layout!.size % 16, f).toBe(0);
    }
    // A block comment between members is no member.
    expect(layoutOf('a: u32, /* b: bool, */ c: f32')!.fields.map((x) => x.name)).toEqual(['a', 'c']);
  });
});
