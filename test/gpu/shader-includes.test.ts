/**
 * The `// #include "name.wgsl"` mechanism of the shader loaders (src/util/shader-includes.ts):
 * a snippet's text replaces the line, once per shader, nested includes resolve, and a missing
 * snippet is an error naming both files. The real shaders that include snippets compile and
 * run in the op tests (conv2d, conv-direct, ...).
 */
import { describe, expect, it } from 'vitest';
import { resolveIncludes, withIncludes } from '../../src/util/shader-includes.ts';
import { snapshotShaders } from '../../src/platform/node/shader-snapshot.ts';
import { fileURLToPath } from 'node:url';

const files: Record<string, string> = {
  main: 'a\n// #include "params.wgsl"\n  // #include "lanes.wgsl"\nb',
  params: 'struct P { n: u32, }',
  lanes: '// #include "params.wgsl"\nfn lanes() {}',
  broken: '// #include "nowhere.wgsl"',
  sloppy: '// #include "params.wgsl" with a remark',
};
const load = (name: string) => {
  const t = files[name];
  if (t === undefined) throw new Error(`no ${name}`);
  return t;
};

describe('shader includes', () => {
  it('replaces each include line by the file, once per shader, nested ones too', () => {
    const out = resolveIncludes('main', files.main!, load);
    expect(out.match(/struct P/g)).toHaveLength(1);
    expect(out).toContain('fn lanes() {}');
    expect(out).toContain('(params.wgsl already included)');
    expect(out.startsWith('a\n// ---- params.wgsl\nstruct P')).toBe(true);
    expect(out.endsWith('b')).toBe(true);
    expect(withIncludes(load)('params')).toBe(files.params);
  });

  it('an include line written any other way is an error, not a silent comment', () => {
    expect(() => withIncludes(load)('sloppy')).toThrow(/sloppy\.wgsl: cannot read the include line .*alone on its line/);
  });

  it('a missing snippet names the including shader and the snippet', () => {
    expect(() => withIncludes(load)('broken')).toThrow(/broken\.wgsl includes nowhere\.wgsl, which cannot be read: no nowhere/);
  });

  it('the Node loader resolves the project shaders: every include of the shaders that use them is resolved, one uniform struct each', () => {
    const shaders = snapshotShaders(fileURLToPath(new URL('../../shaders/', import.meta.url)));
    for (const name of ['conv2d', 'conv-direct', 'batchnorm', 'layernorm', 'chunks']) {
      const text = shaders(name);
      expect(text).not.toMatch(/^\s*\/\/ #include/m);
      expect(text.match(/struct Params \{/g)).toHaveLength(1);
    }
  });
});
