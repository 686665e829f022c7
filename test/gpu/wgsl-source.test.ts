/**
 * Which module-scope variables an entry point names (its body and the functions it calls,
 * transitively), read from WGSL text: the rule for which bindings a launch must give.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { functionBodies, referencedBy, stripComments } from '../../src/gpu/wgsl-source.ts';

const CODE = `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> d: array<f32>;
@group(0) @binding(5) var<storage, read> e: array<f32>;
struct S { a: f32, e: f32 }

fn leaf(i: u32) -> f32 { return b[i]; /* e[i] */ }
fn middle(i: u32) -> f32 {
  var s: S;
  s.e = 1.0;            // a member named like a binding is no use of it
  if (i > 0u) { return leaf(i - 1u) + s.e; }
  return 0.0;
}
fn unused_helper() -> f32 { return d[0]; }

@compute @workgroup_size(64)
fn first(@builtin(global_invocation_id) id: vec3<u32>) {
  c[id.x] = a[id.x] + middle(id.x);  // d[id.x] in a comment
}

@compute @workgroup_size(64)
fn second(@builtin(global_invocation_id) id: vec3<u32>) {
  c[id.x] = 2.0;
}
`;
const NAMES = ['a', 'b', 'c', 'd', 'e'];

describe('WGSL references', () => {
  it('follows calls transitively and ignores comments, members and uncalled functions', () => {
    expect([...referencedBy(CODE, 'first', NAMES)].sort()).toEqual(['a', 'b', 'c']);
    expect([...referencedBy(CODE, 'second', NAMES)]).toEqual(['c']);
    expect([...referencedBy(CODE, 'unused_helper', NAMES)]).toEqual(['d']);
  });

  it('terminates on recursion-shaped call graphs and names a missing entry point', () => {
    const loop = 'fn f() { g(); x[0] = 1.0; }\nfn g() { f(); y[0] = 1.0; }';
    expect([...referencedBy(loop, 'f', ['x', 'y'])].sort()).toEqual(['x', 'y']);
    expect(() => referencedBy(CODE, 'third', NAMES)).toThrow(/no function 'third'/);
  });

  it('strips line and nested block comments, keeping line breaks', () => {
    const text = stripComments('a // x\n/* b /* c */ d */e\n/* f\n*/g');
    expect(text.replace(/ +/g, ' ')).toBe('a \n e\n \n g');
    expect(() => stripComments('/* open')).toThrow(/unterminated/);
  });

  it('reads every function of a shipped shader, braces balanced', () => {
    const code = readFileSync(new URL('../../shaders/conv2d.wgsl', import.meta.url), 'utf8');
    const bodies = functionBodies(code);
    for (const entry of ['gemm', 'pack_weights', 'reduce_partials']) expect(bodies.has(entry), entry).toBe(true);
    // pack_weights touches the weight source and destination only.
    const names = ['src', 'src4', 'wp', 'gy', 'bias', 'dst', 'sites', 'row_of'];
    expect([...referencedBy(code, 'pack_weights', names)].sort()).toEqual(['dst', 'src']);
  });
});
