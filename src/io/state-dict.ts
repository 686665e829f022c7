/**
 * Moves weights between a Module and plain named arrays (what safetensors and .pth hold),
 * under the official state-dict keys. Shapes must match exactly; missing and unexpected keys
 * are reported by name instead of silently ignored.
 */
import type { Module } from '../nn/module.ts';

export interface NamedArray {
  shape: readonly number[];
  data: Float32Array;
}

export interface LoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Writes `entries` into `module`. With `strict` (the default) a missing or unexpected key is
 * an error naming the keys; otherwise they are returned in the report.
 */
export function loadStateDict(module: Module, entries: ReadonlyMap<string, NamedArray>, strict = true): LoadReport {
  const state = module.stateDict();
  const report: LoadReport = { loaded: [], missing: [], unexpected: [] };
  for (const key of entries.keys()) if (!state.has(key)) report.unexpected.push(key);
  for (const [key, value] of state) {
    const entry = entries.get(key);
    if (!entry) {
      report.missing.push(key);
      continue;
    }
    if (value.kind === 'int') {
      value.set(Number(entry.data[0] ?? 0));
    } else {
      if (!sameShape(entry.shape, value.tensor.shape)) {
        throw new Error(`${key}: the file has shape [${entry.shape}], the model expects [${value.tensor.shape}]`);
      }
      module.ctx.gpu.write(value.tensor.buffer, entry.data);
    }
    report.loaded.push(key);
  }
  if (strict && (report.missing.length || report.unexpected.length)) {
    const list = (what: string, keys: string[]) =>
      keys.length ? `${keys.length} ${what} (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', ...' : ''})` : '';
    throw new Error(
      `the weights do not fit this model: ${[list('missing', report.missing), list('unexpected', report.unexpected)]
        .filter(Boolean)
        .join('; ')}. Check the model name, input size and decoder width.`,
    );
  }
  return report;
}

/** Reads every state entry back (asynchronously), as float32 arrays with shapes. */
export async function readStateDict(module: Module): Promise<Map<string, NamedArray>> {
  const out = new Map<string, NamedArray>();
  const pending: Promise<void>[] = [];
  for (const [key, value] of module.stateDict()) {
    if (value.kind === 'int') {
      out.set(key, { shape: [], data: Float32Array.of(value.get()) });
    } else {
      const t = value.tensor;
      pending.push(t.read().then((data) => void out.set(key, { shape: t.shape, data })));
    }
  }
  await Promise.all(pending);
  // Keep the module's key order (reads resolve in any order).
  const ordered = new Map<string, NamedArray>();
  for (const key of module.stateDict().keys()) ordered.set(key, out.get(key)!);
  return ordered;
}
