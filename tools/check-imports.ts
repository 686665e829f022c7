// Checks that the code's layers call downward only: reads every import (type-only and dynamic
// ones included) of the TypeScript under src/ and bench/, and reports
//   - an upward import: a module importing from a layer listed after its own in LAYERS, or from
//     another folder of the same rank (platform/node and platform/browser; ui and cli);
//   - a cycle: modules that import each other, directly or round a circle, in any folder.
// The order and its reasons are in docs/architecture.md ("Layers as built").
//
//   node --import tsx tools/check-imports.ts    prints each problem; exits 1 if there is one
//
// test/layers.test.ts runs it as part of `npm test`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export type Layers = readonly (readonly [rank: number, folder: string])[];

/**
 * Folders from the bottom up: [rank, folder]. A module may import modules of a lower rank and
 * of its own folder. Folders of one rank (the two platforms; the shells) may not import each other.
 */
export const LAYERS: Layers = [
  [0, 'src/util'],
  [1, 'src/gpu'],
  [2, 'src/tensor'],
  [3, 'src/ops'],
  [4, 'src/nn'],
  [5, 'src/models'],
  [6, 'src/optim'],
  [7, 'src/data'],
  [8, 'src/io'],
  [9, 'src/train'],
  [10, 'src/eval'],
  [10, 'src/finetune'],
  [11, 'src/platform/node'],
  [11, 'src/platform/browser'],
  [12, 'bench'],
  [13, 'src/worker'],
  [14, 'src/ui'],
  [14, 'src/cli'],
];

const SOURCE = /\.(ts|mts|mjs|js)$/;

function sourcesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  const entries = readdirSync(join(root, dir), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...sourcesUnder(root, path));
    else if (SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The layer a repository-relative path belongs to (the longest matching folder), or null. */
export function layerOf(path: string, layers: Layers = LAYERS): { rank: number; folder: string } | null {
  let best: { rank: number; folder: string } | null = null;
  for (const [rank, folder] of layers) {
    if ((path === folder || path.startsWith(`${folder}/`)) && (!best || folder.length > best.folder.length)) best = { rank, folder };
  }
  return best;
}

/**
 * Type-only imports that may close a cycle, each with its reason. Only these: every other cycle
 * is reported, type-only or not, because a type names a module as surely as a value does.
 */
export const TYPE_BACK_EDGES: Readonly<Record<string, string>> = {
  'src/tensor/tensor.ts -> src/tensor/context.ts':
    'a tensor names the Context that owns it (ops reach the Context as x.ctx); the Context makes the tensors',
};

/** Each import of a module: { spec, typeOnly } (static, re-exports, `import()` and `import('x').T`). */
function importsOf(file: string, text: string): { spec: string; typeOnly: boolean }[] {
  const kind = /\.m?js$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, kind);
  const found: { spec: string; typeOnly: boolean }[] = [];
  // `import { type A, type B }`: type-only although the declaration itself is not marked.
  const typeOnlyNamed = (bindings: ts.NamedImportBindings | ts.NamedExportBindings | undefined): boolean =>
    !!bindings && (ts.isNamedImports(bindings) || ts.isNamedExports(bindings)) &&
    bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      found.push({ spec: node.moduleSpecifier.text, typeOnly: !!c && (c.isTypeOnly || (!c.name && typeOnlyNamed(c.namedBindings))) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ spec: node.moduleSpecifier.text, typeOnly: node.isTypeOnly || typeOnlyNamed(node.exportClause) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      found.push({ spec: node.arguments[0].text, typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ spec: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * Relative imports of each module: Map of path -> Map of imported path -> whether every import
 * of it is type-only. Paths are relative to `root`, with '/'.
 */
export type ImportGraph = Map<string, Map<string, boolean>>;

export function importGraph(root: string, dirs: readonly string[] = ['src', 'bench']): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of dirs.flatMap((d) => sourcesUnder(root, d))) {
    const targets = new Map<string, boolean>();
    for (const { spec, typeOnly } of importsOf(file, readFileSync(join(root, file), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const to = relative(root, resolve(root, dirname(file), spec.replace(/\?.*$/, ''))).split(sep).join('/');
      targets.set(to, (targets.get(to) ?? true) && typeOnly);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Imports that go up a layer or across folders of one rank: [{ from, to, why }]. */
export function upwardImports(graph: ImportGraph, layers: Layers = LAYERS): { from: string; to: string; why: string }[] {
  const found: { from: string; to: string; why: string }[] = [];
  for (const [from, targets] of graph) {
    const a = layerOf(from, layers);
    if (!a) continue;
    for (const to of targets.keys()) {
      const b = layerOf(to, layers);
      if (!b || b.folder === a.folder || b.rank < a.rank) continue;
      const why = b.rank > a.rank ? `${a.folder} (rank ${a.rank}) imports ${b.folder} (rank ${b.rank})` : `${a.folder} and ${b.folder} are side by side`;
      found.push({ from, to, why });
    }
  }
  return found;
}

/** Every import cycle, each as the list of modules round it (strongly connected components). */
export function cycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative so that deep import chains cannot overflow the stack.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1]!;
      const [v, i] = frame;
      const targets = [...(graph.get(v)?.keys() ?? [])].filter((t) => graph.has(t));
      if (i < targets.length) {
        frame[1]++;
        const w = targets[i]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]![0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        const selfLoop = graph.get(v)?.has(v) ?? false;
        if (component.length > 1 || selfLoop) found.push(component.sort());
      }
    }
  }
  return found;
}

/** Every problem as one line of text; empty when the layers are clean. */
export interface CheckOptions {
  layers?: Layers;
  allowed?: Readonly<Record<string, string>>;
  dirs?: readonly string[];
}

export function checkImports(root: string, { layers = LAYERS, allowed = TYPE_BACK_EDGES, dirs = ['src', 'bench'] }: CheckOptions = {}): string[] {
  const graph = importGraph(root, dirs);
  const problems: string[] = [];
  for (const { from, to, why } of upwardImports(graph, layers)) problems.push(`upward import: ${from} -> ${to} (${why})`);
  // The allowed type-only back edges leave the graph before cycles are looked for.
  for (const edge of Object.keys(allowed)) {
    const [from = '', to = ''] = edge.split(' -> ');
    const typeOnly = graph.get(from)?.get(to);
    if (typeOnly === undefined) problems.push(`allowed back edge no longer exists (remove it from TYPE_BACK_EDGES): ${edge}`);
    else if (!typeOnly) problems.push(`allowed back edge imports values, not only types: ${edge}`);
    else graph.get(from)!.delete(to);
  }
  for (const c of cycles(graph)) problems.push(`import cycle: ${c.join(' <-> ')}`);
  for (const file of graph.keys()) {
    if (file.startsWith('src/') && !layerOf(file, layers)) problems.push(`no layer: ${file} (add its folder to LAYERS)`);
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkImports(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
  for (const p of problems) process.stdout.write(`${p}\n`);
  process.stdout.write(problems.length ? `${problems.length} problem(s)\n` : 'imports: layers call downward only, no cycles\n');
  process.exitCode = problems.length ? 1 : 0;
}
