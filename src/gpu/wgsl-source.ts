/**
 * Small readings of WGSL source text: comments removed, and which module-scope variables an
 * entry point uses (in its own body or in any function it calls, transitively). The runtime
 * binds a placeholder only to a binding its entry point never names (`Gpu.dispatch`).
 *
 * The reading is by identifiers, not a full parse: a name counts as used wherever it appears
 * as an identifier in a body (not after a `.`, where it is a member). A local variable that
 * shadows a module-scope name therefore counts as a use; that errs toward asking the caller
 * for a buffer, never toward binding a placeholder where the code reads one.
 */

/** The text with `//` line comments and (nested) block comments replaced by spaces. */
export function stripComments(code: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < code.length; i++) {
    const two = code.slice(i, i + 2);
    if (depth === 0 && two === '//') {
      while (i < code.length && code[i] !== '\n') i++;
      out += '\n';
    } else if (two === '/*') {
      depth++;
      i++;
      out += '  ';
    } else if (depth > 0 && two === '*/') {
      depth--;
      i++;
      out += '  ';
    } else {
      out += depth > 0 ? (code[i] === '\n' ? '\n' : ' ') : code[i];
    }
  }
  if (depth > 0) throw new Error('WGSL source: unterminated block comment');
  return out;
}

export interface FunctionBody {
  name: string;
  /** Identifiers in the body (member names after `.` left out). */
  identifiers: ReadonlySet<string>;
}

const FN_HEAD = /\bfn\s+(\w+)\s*\(/g;

/** Every module-scope function's name and the identifiers of its parameter list and body. */
export function functionBodies(code: string): Map<string, FunctionBody> {
  const text = stripComments(code);
  const out = new Map<string, FunctionBody>();
  for (const m of text.matchAll(FN_HEAD)) {
    const name = m[1]!;
    const open = text.indexOf('{', m.index! + m[0].length);
    if (open < 0) throw new Error(`WGSL source: fn ${name} has no body`);
    let depth = 0;
    let close = open;
    for (; close < text.length; close++) {
      if (text[close] === '{') depth++;
      else if (text[close] === '}' && --depth === 0) break;
    }
    if (depth !== 0) throw new Error(`WGSL source: fn ${name} has unbalanced braces`);
    const identifiers = new Set<string>();
    for (const id of text.slice(open + 1, close).matchAll(/(\.\s*)?\b([A-Za-z_]\w*)/g)) {
      if (!id[1]) identifiers.add(id[2]!);
    }
    out.set(name, { name, identifiers });
  }
  return out;
}

/**
 * The names among `candidates` (module-scope variables) that `entry` uses, directly or
 * through the functions it calls. Throws if the file has no function `entry`.
 */
export function referencedBy(code: string, entry: string, candidates: Iterable<string>): Set<string> {
  const bodies = functionBodies(code);
  if (!bodies.has(entry)) throw new Error(`WGSL source: no function '${entry}'`);
  const wanted = new Set(candidates);
  const used = new Set<string>();
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length > 0) {
    for (const id of bodies.get(queue.pop()!)!.identifiers) {
      if (wanted.has(id)) used.add(id);
      if (bodies.has(id) && !seen.has(id)) {
        seen.add(id);
        queue.push(id);
      }
    }
  }
  return used;
}
