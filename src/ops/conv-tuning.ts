/**
 * The conv kernels' tuning registry: what the conv launchers (conv-launch.ts) look up, synchronously,
 * at every dispatch, and what the auto-tune (autotune.ts) fills in. Kept apart from both so
 * neither imports the other's machinery.
 *
 * A `ConvConfig` is a kernel configuration, never a different shader text: override constants
 * of shaders/conv2d.wgsl (RB, TM, TN, VEC4_A) and launcher choices (the flipped stride-1 input
 * gradient, split-K chunk size). The empty config is the default, candidate 0 of every
 * key, so a run that never tunes (or whose tuning rejected everything) is exactly the untuned
 * behaviour.
 *
 * Lookup works inside a recording (nothing is timed or awaited there): an untuned key returns
 * the default and is remembered in `seen`, with the geometry it was seen at, so that
 * `tuneConvs` can tune every conv shape a training step used once that step has been recorded.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { isSparse, type ConvConfig, type ConvGeometry, type ConvPass } from './conv-plan.ts';

interface Registry {
  chosen: Map<string, ConvConfig>;
  seen: Map<string, { pass: ConvPass; g: ConvGeometry }>;
  /** One config for every conv while set (`withConvConfig`), tuned or not. */
  forced: ConvConfig | null;
  /** The keys looked up while set (`convKeysUsedBy`). */
  used: Set<string> | null;
}

const registries = new WeakMap<Gpu, Registry>();

export function registry(gpu: Gpu): Registry {
  let r = registries.get(gpu);
  if (!r) registries.set(gpu, (r = { chosen: new Map(), seen: new Map(), forced: null, used: null }));
  return r;
}

/** Next power of two >= n: sparse row counts move with every mask, the class should not. */
function bucket(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/**
 * The key of a conv GEMM: pass and geometry class (kernel, stride, pad, groups, channels,
 * sparse or dense, 1x1 fast path, walked rows rounded up to a power of two). The adapter is
 * not in it: chosen configs live per Gpu, and the persisted cache is keyed by adapter above
 * the keys (autotune.ts).
 */
export function tuneKey(pass: ConvPass, g: ConvGeometry): string {
  const sparse = isSparse(g);
  const rows = pass === 'dx' ? g.inRows : g.outRows;
  return (
    `${pass} ${sparse ? 'sparse' : 'dense'} k${g.kh}x${g.kw} s${g.stride} p${g.pad} g${g.groups}` +
    ` ${g.cin}->${g.cout} rows<=${bucket(rows)}${g.pointwise ? ' 1x1' : ''}`
  );
}

/**
 * Runs `fn` with `config` used by every conv on this Gpu, tuned or not, and restores what was
 * there (also when `fn` throws): the tests run their float64-reference cases under each
 * candidate configuration this way, and benchmarks compare configurations.
 */
export async function withConvConfig<T>(gpu: Gpu, config: ConvConfig, fn: () => Promise<T> | T): Promise<T> {
  const r = registry(gpu);
  const saved = r.forced;
  r.forced = config;
  try {
    return await fn();
  } finally {
    r.forced = saved;
  }
}

/** The config the launchers use for this pass and geometry (the default `{}` until tuned). */
export function convConfig(gpu: Gpu, pass: ConvPass, g: ConvGeometry): ConvConfig {
  const r = registry(gpu);
  const key = tuneKey(pass, g);
  r.used?.add(key);
  if (r.forced) return r.forced;
  const c = r.chosen.get(key);
  if (c) return c;
  if (!r.seen.has(key)) r.seen.set(key, { pass, g });
  return {};
}

/**
 * Runs `fn` (synchronous: a step's recording) and returns the conv keys it looked up, so a
 * training run tunes its own step's shapes and not those of other models on the same Gpu
 * (the app's demo reconstructs with its own model on the training device).
 */
export function convKeysUsedBy<T>(gpu: Gpu, fn: () => T): { result: T; keys: string[] } {
  const r = registry(gpu);
  const outer = r.used;
  const used = new Set<string>();
  r.used = used;
  try {
    const result = fn();
    return { result, keys: [...used] };
  } finally {
    r.used = outer;
    if (outer) for (const k of used) outer.add(k);
  }
}
