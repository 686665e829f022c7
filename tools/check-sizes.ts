// Checks the size rules of docs/architecture.md ("Small files with one job"): no TypeScript
// file under src/, bench/ or tools/ and no shader in shaders/ over MAX_FILE_LINES lines, and no
// TypeScript function (declaration, method, arrow or function expression with a body) over
// MAX_FUNCTION_LINES lines. Shader functions are not counted: a WGSL kernel is one entry point
// by nature.
//
//   node --import tsx tools/check-sizes.ts    prints each file or function over its limit; exits 1 if there is one
//
// test/sizes.test.ts runs it as part of `npm test`.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const MAX_FILE_LINES = 450;
export const MAX_FUNCTION_LINES = 120;
const FOLDERS = ['src', 'bench', 'tools'];

function filesOf(dir: string, ext: RegExp): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return filesOf(path, ext);
    return ext.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

function tooLong(path: string, text: string): string[] {
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  return lines > MAX_FILE_LINES ? [`${path}: ${lines} lines (at most ${MAX_FILE_LINES})`] : [];
}

/** Each file or function of `text` over its limit, as `path: what (N lines, at most M)`. */
export function oversized(path: string, text: string): string[] {
  const problems = tooLong(path, text);
  if (path.endsWith('.wgsl')) return problems;
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = lineOf(node.getStart(source));
      const span = lineOf(node.getEnd()) - first + 1;
      if (span > MAX_FUNCTION_LINES) {
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : `function at line ${first}`;
        problems.push(`${path}:${first}: ${name} is ${span} lines (at most ${MAX_FUNCTION_LINES})`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

/** Every problem in the tree at `root`. */
export function checkSizes(root: string): string[] {
  return [...FOLDERS.flatMap((folder) => filesOf(join(root, folder), /\.(ts|mts)$/)), ...filesOf(join(root, 'shaders'), /\.wgsl$/)]
    .sort()
    .flatMap((file) => oversized(relative(root, file).split(sep).join('/'), readFileSync(file, 'utf8')));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const problems = checkSizes(fileURLToPath(new URL('..', import.meta.url)));
  for (const p of problems) console.log(p);
  process.exitCode = problems.length ? 1 : 0;
}
