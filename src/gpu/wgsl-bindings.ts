/**
 * Reads the `@group(0) @binding(n) var<...> name` declarations of a WGSL file, so pipelines
 * get an explicit layout and ops bind buffers by the names the shader uses.
 */
import { stripComments } from './wgsl-source.ts';

export interface BindingDecl {
  binding: number;
  name: string;
  type: GPUBufferBindingType;
}

const DECL =
  /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var<\s*(storage|uniform)\s*(?:,\s*(read|read_write)\s*)?>\s*(\w+)/g;

export function parseBindings(code: string): Map<string, BindingDecl> {
  const out = new Map<string, BindingDecl>();
  const stripped = stripComments(code);
  for (const m of stripped.matchAll(DECL)) {
    const [, binding, space, access, name] = m;
    const type: GPUBufferBindingType =
      space === 'uniform' ? 'uniform' : access === 'read_write' ? 'storage' : 'read-only-storage';
    out.set(name!, { binding: Number(binding), name: name!, type });
  }
  if (out.size === 0) throw new Error('shader declares no @group(0) bindings');
  return out;
}
