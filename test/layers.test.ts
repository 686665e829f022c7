/**
 * Layers call downward only (tools/check-imports.ts, the order in docs/architecture.md): the
 * code as it is has no upward import and no cycle, and the check finds each kind of problem in
 * a small tree made to have it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkImports, cycles, importGraph } from '../tools/check-imports.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'webspark-layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  mkdirSync(join(dir, 'bench'), { recursive: true });
  return dir;
}

describe('import layers', () => {
  it('src/ and bench/ import downward only, with no cycle', () => {
    expect(checkImports(root)).toEqual([]);
  });

  it('reports an upward import, a sideways one, a cycle through a type, and a file with no layer', () => {
    const dir = tree({
      'src/tensor/context.ts': "import { add } from '../ops/elementwise.ts';\nexport const ctx = add;\n",
      'src/ops/elementwise.ts': "import type { Context } from '../tensor/context.ts';\nexport const add = 1;\n",
      'src/platform/node/gpu.ts': "export const x = await import('../browser/gpu.ts');\n",
      'src/platform/browser/gpu.ts': 'export const y = 1;\n',
      'src/misc/thing.ts': 'export const z = 1;\n',
    });
    expect(checkImports(dir, { allowed: {} })).toEqual([
      'upward import: src/platform/node/gpu.ts -> src/platform/browser/gpu.ts (src/platform/node and src/platform/browser are side by side)',
      'upward import: src/tensor/context.ts -> src/ops/elementwise.ts (src/tensor (rank 2) imports src/ops (rank 3))',
      'import cycle: src/ops/elementwise.ts <-> src/tensor/context.ts',
      'no layer: src/misc/thing.ts (add its folder to LAYERS)',
    ]);
  });

  it('lets an allowed back edge close a cycle only while it imports types alone', () => {
    const files = {
      'src/tensor/tensor.ts': "import type { Context } from './context.ts';\nexport class Tensor { ctx?: Context; }\n",
      'src/tensor/context.ts': "import { Tensor } from './tensor.ts';\nexport class Context { t = new Tensor(); }\n",
    };
    const allowed = { 'src/tensor/tensor.ts -> src/tensor/context.ts': 'owner and owned' };
    expect(checkImports(tree(files), { allowed })).toEqual([]);
    expect(checkImports(tree(files), { allowed: {} })).toEqual(['import cycle: src/tensor/context.ts <-> src/tensor/tensor.ts']);
    const valueImport = { ...files, 'src/tensor/tensor.ts': "import { Context } from './context.ts';\nexport const c = Context;\n" };
    expect(checkImports(tree(valueImport), { allowed })).toEqual([
      'allowed back edge imports values, not only types: src/tensor/tensor.ts -> src/tensor/context.ts',
      'import cycle: src/tensor/context.ts <-> src/tensor/tensor.ts',
    ]);
    const stale = { 'src/tensor/context.ts': 'export class Context {}\n' };
    expect(checkImports(tree(stale), { allowed })).toEqual([
      'allowed back edge no longer exists (remove it from TYPE_BACK_EDGES): src/tensor/tensor.ts -> src/tensor/context.ts',
    ]);
  });

  it('reads every kind of import and finds cycles of any length', () => {
    const dir = tree({
      'src/ops/a.ts': "import './b.ts';\nexport { x } from './c.ts';\nexport type T = import('./d.ts').D;\n// import './e.ts'\nconst s = `import './f.ts'`;\n",
      'src/ops/b.ts': "import { type Y } from './c.ts';\nlet y: Y;\n",
      'src/ops/c.ts': "export const x = await import('./a.ts');\nexport type Y = 1;\n",
      'src/ops/d.ts': 'export type D = 1;\n',
    });
    const graph = importGraph(dir);
    // Comments and strings are not imports; a side-effect import carries values.
    expect([...graph.get('src/ops/a.ts')!]).toEqual([['src/ops/b.ts', false], ['src/ops/c.ts', false], ['src/ops/d.ts', true]]);
    expect([...graph.get('src/ops/b.ts')!]).toEqual([['src/ops/c.ts', true]]);
    expect(cycles(graph)).toEqual([['src/ops/a.ts', 'src/ops/b.ts', 'src/ops/c.ts']]);
  });
});
