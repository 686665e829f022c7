/**
 * The conv kernels' tuning registry: what the conv launchers (conv2d-gemm.ts) look up, synchronously,
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
import type { ConvGeometry } from './conv-geometry.ts';

export interface ConvConfig {
  /** Rows of C per thread: 4 (4x4 register blocks, 256 threads at 64x64) or 8 (8x4, 128). */
  rb?: 4 | 8;
  /** Tile rows (M) / columns (N); default 32 when the GEMM dimension is <= 32, else 64. */
  tm?: 32 | 64;
  tn?: 32 | 64;
  /** Reduction rows per step (per barrier pair): 16, or 32 with 32x32 tiles only. */
  kt?: 16 | 32;
  /** The vec4 channel gather (forward / input-gradient GEMMs); default `convVariants.vec4Gather`. */
  vec4?: boolean;
  /** Input gradient (GEMM, not the flipped form, or direct): false reads the OIHW weight unpacked (no pack dispatch). */
  packW?: boolean;
  /** Input gradient only (dense, not 1x1): the direct kernel of conv-direct.ts instead of a GEMM, this many pixels per invocation. */
  direct?: 1 | 2 | 4;
  /** Input gradient only: the flipped stride-1 form; default `convVariants.flipInputGrad`. */
  flip?: boolean;
  /** Weight gradient only: least rows per split-K chunk (a multiple of 16); default 128. */
  minChunkRows?: number;
}

/** The three conv GEMM passes a key names: forward, input gradient (= convT forward), weight gradient. */
export type ConvPass = 'fwd' | 'dx' | 'dw';

interface Registry {
  chosen: Map<string, ConvConfig>;
  seen: Map<string, { pass: ConvPass; g: ConvGeometry }>;
}

const registries = new WeakMap<Gpu, Registry>();

export function registry(gpu: Gpu): Registry {
  let r = registries.get(gpu);
  if (!r) registries.set(gpu, (r = { chosen: new Map(), seen: new Map() }));
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
  const sparse = g.inL !== null && !g.inL.isDense;
  const rows = pass === 'dx' ? g.inRows : g.outRows;
  return (
    `${pass} ${sparse ? 'sparse' : 'dense'} k${g.kh}x${g.kw} s${g.stride} p${g.pad} g${g.groups}` +
    ` ${g.cin}->${g.cout} rows<=${bucket(rows)}${g.pointwise ? ' 1x1' : ''}`
  );
}

/**
 * One config for every conv, tuned or not, while `config` is set: the tests run their
 * float64-reference cases under each candidate configuration this way (as `convVariants`).
 */
export const convForce: { config: ConvConfig | null } = { config: null };

/** The config the launchers use for this pass and geometry (the default `{}` until tuned). */
export function convConfig(gpu: Gpu, pass: ConvPass, g: ConvGeometry): ConvConfig {
  if (convForce.config) return convForce.config;
  const r = registry(gpu);
  const key = tuneKey(pass, g);
  const c = r.chosen.get(key);
  if (c) return c;
  if (!r.seen.has(key)) r.seen.set(key, { pass, g });
  return {};
}
