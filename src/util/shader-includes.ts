/**
 * Shared WGSL snippets: a shader line `// #include "name.wgsl"` is replaced by the text of
 * shaders/name.wgsl, so a struct or helper that several shaders need is written once. WGSL
 * has no include of its own; this is the whole mechanism, applied by both shader loaders (Node:
 * src/platform/node/shader-snapshot.ts, browser: src/platform/browser/gpu.ts) before a shader reaches the device. Tuning
 * stays with `override` constants: an include is plain text, the same for every pipeline.
 *
 * A file is included at most once per shader (a second include of it, directly or through
 * another snippet, is dropped), and a snippet's own includes are resolved the same way.
 */

const INCLUDE = /^[ \t]*\/\/ #include "([A-Za-z0-9_.-]+)\.wgsl"[ \t]*$/gm;

/** `text` (shader `name`) with its includes resolved through `load`. */
export function resolveIncludes(name: string, text: string, load: (name: string) => string): string {
  const included = new Set<string>([name]);
  const expand = (from: string, src: string, depth: number): string =>
    src.replace(INCLUDE, (_line, file: string) => {
      if (included.has(file)) return `// (${file}.wgsl already included)`;
      if (depth > 8) throw new Error(`shader ${name}.wgsl: includes nest deeper than 8 levels at ${from}.wgsl`);
      included.add(file);
      let body: string;
      try {
        body = load(file);
      } catch (err) {
        throw new Error(`shader ${from}.wgsl includes ${file}.wgsl, which cannot be read: ${err instanceof Error ? err.message : String(err)}`);
      }
      return `// ---- ${file}.wgsl\n${expand(file, body, depth + 1)}\n// ---- end of ${file}.wgsl`;
    });
  const out = expand(name, text, 0);
  // A directive the pattern above does not read would silently stay a comment.
  const stray = /^[ \t]*\/\/[ \t]*#include.*$/m.exec(out);
  if (stray) throw new Error(`shader ${name}.wgsl: cannot read the include line '${stray[0].trim()}' (write: // #include "name.wgsl", alone on its line)`);
  return out;
}

/** A loader that serves `load`'s texts with their includes resolved. */
export function withIncludes(load: (name: string) => string): (name: string) => string {
  return (name) => resolveIncludes(name, load(name), load);
}
