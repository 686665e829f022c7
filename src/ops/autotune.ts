/**
 * A small, bounded, cached auto-tune for the conv GEMM kernels.
 *
 * Why: no fixed kernel configuration is best on every adapter (8x4 register blocks were 30 %
 * faster than 4x4 on SwiftShader and 30 % slower on an H100, docs/performance.md), so the
 * choice is made per adapter and per GEMM class by timing a few candidates on the real shape.
 *
 * - Key: pass (forward / input gradient / weight gradient) and geometry class (`tuneKey`,
 *   conv-tuning.ts); the adapter is the Gpu the choice is kept on, and the persisted cache's
 *   top-level key (`adapterId`).
 * - Candidates (`candidatesFor`): at most MAX_CANDIDATES kernel configurations (override
 *   constants and launcher switches, never spliced WGSL), the default first; candidates
 *   that run the very same kernels on this shape are dropped before anything runs.
 * - Checks, before any timing: a candidate's output on the real shape must match the
 *   default's (whose numerics the tests check against the float64 reference), and its output
 *   on a small awkward shape of the same kind must match a float64 CPU conv
 *   (conv-reference.ts), both within the f32 bound stated at `tolerance`. A candidate that
 *   fails is never used and is reported with its error.
 * - Timing: GPU timestamps where the device has them (`Gpu.timeOnGpu`), else wall time
 *   between fences; candidates interleaved round by round, the median per candidate; timing
 *   stops when the key's time budget is spent. A candidate must beat the default by `minGain`
 *   to replace it (a tie within noise keeps the default).
 * - Cache: the choice is kept per Gpu (conv-tuning.ts `registry`), so a second call times
 *   nothing; a `TuneStore` persists it per adapter (Node: a JSON file, browser: IndexedDB).
 *   Loaded entries are re-checked numerically (cheap) but not re-timed.
 *
 * Tuning runs eagerly and awaits the GPU, so never inside a recording: a trainer tunes after
 * step 0 has run (when every conv key of the step is known) and before it records the step
 * it keeps (TrainerOptions.autotune).
 */
import type { Context } from '../tensor/context.ts';
import { PatchMask, SiteLayout } from '../tensor/layout.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../util/rng.ts';
import { convVariants, forward, inputGrad, weightGrad } from './conv2d-gemm.ts';
import type { ConvGeometry } from './conv-geometry.ts';
import { referenceConvPass } from './conv-reference.ts';
import { directApplies } from './conv-direct.ts';
import { registry, tuneKey, type ConvConfig, type ConvPass } from './conv-tuning.ts';

/** No key ever runs or times more candidates than this (the default included). */
export const MAX_CANDIDATES = 6;

/** Persisted choices, per adapter: key -> config. */
export interface TuneStore {
  load(adapter: string): Promise<Record<string, ConvConfig>>;
  save(adapter: string, entries: Record<string, ConvConfig>): Promise<void>;
}

export interface TuneOptions {
  /** Candidates per key, default included (1..MAX_CANDIDATES; default MAX_CANDIDATES). */
  maxCandidates?: number;
  /** Wall-clock ms of timing per key; no sample starts after it is spent (default 4000). */
  budgetMs?: number;
  /** Timing rounds (one sample per candidate per round; default 3). */
  rounds?: number;
  /** Fraction by which a candidate must beat the default's median to replace it (default 0.05). */
  minGain?: number;
  /** Only these keys (default: every key seen and not yet tuned on this Gpu). */
  keys?: readonly string[];
  /**
   * Tune only the `maxKeys` conv shapes with the most multiply-adds among those ever passed to
   * tuneConvs on this Gpu (the largest GEMMs dominate a step); the others keep the default
   * kernels and stay untuned. Bounds the cost where each candidate run is slow (a software
   * adapter: seconds per shape even for the app's tiny model). Default: every shape.
   */
  maxKeys?: number;
  store?: TuneStore | null;
  log?: (line: string) => void;
  /**
   * Called once before the first key (done 0, report null) and after each key (its report;
   * null for a key with nothing to compute), so an app can show "k/N shapes" while it runs.
   */
  progress?: (p: { done: number; total: number; key: string | null; report: KeyReport | null }) => void;
  /** Test hook: the candidate list of a key (the bound still applies). */
  candidates?: (pass: ConvPass, g: ConvGeometry) => ConvConfig[];
  /** Test hook: perturb this candidate's real-shape output before it is checked. */
  corrupt?: (key: string, config: ConvConfig) => boolean;
  /** Test hook: 'last' picks the last candidate that passed instead of the fastest. */
  choose?: 'fastest' | 'last';
}

export interface CandidateReport {
  config: ConvConfig;
  label: string;
  /** Why the candidate was not used; null if it passed both checks. */
  rejected: string | null;
  /** Timed samples, ms per run. */
  samples: number[];
  /** Median of the samples; null if never timed. */
  ms: number | null;
}

export interface KeyReport {
  key: string;
  /** 'timed': tuned now; 'store': a persisted choice, re-checked; 'memory': tuned before on this Gpu. */
  source: 'timed' | 'store' | 'memory';
  candidates: CandidateReport[];
  /** Index of the chosen candidate (0 = the default). */
  winner: number;
  config: ConvConfig;
  /** Wall ms spent on this key (checks and timing). */
  ms: number;
}

/** The persisted cache's key for this Gpu's adapter. */
export function adapterId(ctx: Context): string {
  const a = ctx.gpu.adapter;
  return [a.vendor, a.architecture, a.device, a.description].join('/') + (a.isFallbackAdapter ? ' (fallback)' : '');
}

export function configLabel(c: ConvConfig): string {
  const parts = Object.entries(c).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : 'default';
}

/**
 * A persisted entry as a config, or null if it is not one this code can run (a cache written
 * by another version, or edited by hand): unknown fields or values are refused, not passed on
 * as override constants.
 */
export function parseConfig(v: unknown): ConvConfig | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const allowed: Record<string, (x: unknown) => boolean> = {
    rb: (x) => x === 4 || x === 8,
    tm: (x) => x === 32 || x === 64,
    tn: (x) => x === 32 || x === 64,
    kt: (x) => x === 16 || x === 32,
    vec4: (x) => typeof x === 'boolean',
    flip: (x) => typeof x === 'boolean',
    packW: (x) => typeof x === 'boolean',
    direct: (x) => x === 1 || x === 2 || x === 4,
    minChunkRows: (x) => Number.isInteger(x) && (x as number) >= 16 && (x as number) <= 2 ** 20,
  };
  for (const [k, x] of Object.entries(v)) if (!allowed[k]?.(x)) return null;
  const c = v as ConvConfig;
  if (c.kt === 32 && (c.tm !== 32 || c.tn !== 32)) return null; // the launcher's rule
  return c;
}

// ---- candidates ---------------------------------------------------------------------------

const tileFor = (n: number) => (n <= 32 ? 32 : 64);

function flipApplies(g: ConvGeometry): boolean {
  return g.stride === 1 && g.kh === g.kw && g.pad <= g.kh - 1 && !g.pointwise;
}

/**
 * What a config does on this pass and shape, mirroring the launchers' rules
 * (conv2d-gemm.ts): two configs with the same signature run the same kernels.
 */
function signature(pass: ConvPass, g: ConvGeometry, c: ConvConfig): string {
  const cinG = g.cin / g.groups;
  const coutG = g.cout / g.groups;
  const sparse = g.inL !== null && !g.inL.isDense;
  let M: number;
  let N: number;
  let chan = -1;
  let flip = false;
  let chunk = 0;
  let unpacked = false;
  // The direct input-gradient kernel ignores every GEMM setting.
  if (pass === 'dx' && c.direct && directApplies(g)) {
    return `direct ${c.direct} ${c.packW === false && g.kh * g.kw > 1 ? 'oihw' : 'packed'}`;
  }
  if (pass === 'fwd') {
    [M, N, chan] = [g.outRows, coutG, cinG];
  } else if (pass === 'dx') {
    flip = flipApplies(g) && (c.flip ?? convVariants.flipInputGrad);
    unpacked = !flip && c.packW === false && g.kh * g.kw > 1;
    const classRows = sparse || g.pointwise ? g.inRows : g.batch * Math.ceil(g.inH / g.stride) * Math.ceil(g.inW / g.stride);
    [M, N, chan] = [flip ? g.inRows : classRows, cinG, coutG];
  } else {
    [M, N] = [coutG, g.kh * g.kw * cinG];
    const rows = Math.max(c.minChunkRows ?? 128, Math.ceil(g.outRows / 256));
    chunk = Math.min(Math.ceil(rows / 16) * 16, Math.ceil(g.outRows / 16) * 16);
  }
  const vec4 = chan >= 0 && (c.vec4 ?? convVariants.vec4Gather) && chan % 4 === 0;
  return JSON.stringify([c.rb ?? 4, c.tm ?? tileFor(M), c.tn ?? tileFor(N), c.kt ?? 16, vec4, flip, unpacked, chunk]);
}

/** Candidate configurations of a key, the default first, distinct in effect, at most `max`. */
export function candidatesFor(pass: ConvPass, g: ConvGeometry, max = MAX_CANDIDATES, list?: ConvConfig[]): ConvConfig[] {
  const otherFlip = !convVariants.flipInputGrad;
  const otherVec4 = !convVariants.vec4Gather;
  const all: ConvConfig[] = list ?? ({
    fwd: [{}, { rb: 8 }, { tm: 32 }, { rb: 8, tm: 32 }, { vec4: otherVec4 }, { rb: 8, tm: 32, tn: 32, kt: 32 }],
    // dx of a strided conv is also the transposed conv's forward: its sub-pixel classes have
    // few rows each, hence the 32-row tile candidates, and the direct kernel (no GEMM; 4 or 2
    // pixels per invocation, 1 lost everywhere; on the OIHW weight, no pack dispatch:
    // docs/performance.md "The direct kernel"). A strided key keeps the first six that apply
    // (the flips do not), a stride-1 key the first six (the GEMM's unpacked weight does not).
    dx: [
      {}, { rb: 8 }, { flip: otherFlip }, { rb: 8, tm: 32, tn: 32, kt: 32 }, { direct: 4 },
      { direct: 4, packW: false }, { rb: 8, flip: otherFlip }, { direct: 2, packW: false },
      { rb: 8, tm: 32, tn: 32, kt: 32, packW: false },
    ],
    // Split-K: more, shorter chunks (more workgroups) or fewer, longer ones (fewer partials to
    // sum, fewer workgroups to schedule: SwiftShader prefers those).
    dw: [{}, { rb: 8 }, { minChunkRows: 64 }, { minChunkRows: 512 }, { rb: 8, minChunkRows: 512 }, { rb: 8, tm: 32, tn: 32, kt: 32, minChunkRows: 512 }],
  } satisfies Record<ConvPass, ConvConfig[]>)[pass];
  const seen = new Set<string>();
  const out: ConvConfig[] = [];
  for (const c of all) {
    const s = signature(pass, g, c);
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(c);
    if (out.length >= Math.min(max, MAX_CANDIDATES)) break;
  }
  return out;
}

// ---- running and checking -----------------------------------------------------------------

/** The pass's operands: fwd (x, w), dx (dy, w), dw (x, dy), uniform in [-1, 1). */
function operands(pass: ConvPass, g: ConvGeometry, rng: Rng): [Float32Array, Float32Array] {
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const w = () => rand((g.cout * g.cin * g.kh * g.kw) / g.groups);
  if (pass === 'fwd') return [rand(g.inRows * g.cin), w()];
  if (pass === 'dx') return [rand(g.outRows * g.cout), w()];
  return [rand(g.inRows * g.cin), rand(g.outRows * g.cout)];
}

/**
 * The operands as tensors the tuner owns across its awaits (a tidy scope cannot span them);
 * `free` gives their buffers back to the pool.
 */
function upload(ctx: Context, pass: ConvPass, g: ConvGeometry, [a, b]: [Float32Array, Float32Array]) {
  const make = (data: Float32Array, shape: number[]) => {
    const t = new Tensor(ctx, shape, ctx.gpu.buffer(Math.max(data.length, 1) * 4, 'autotune'));
    ctx.gpu.write(t.buffer, data);
    return t;
  };
  const wShape = [g.cout, g.cin / g.groups, g.kh, g.kw];
  const shapes = {
    fwd: [[g.inRows, g.cin], wShape],
    dx: [[g.outRows, g.cout], wShape],
    dw: [[g.inRows, g.cin], [g.outRows, g.cout]],
  }[pass];
  const tensors: [Tensor, Tensor] = [make(a, shapes[0]!), make(b, shapes[1]!)];
  const free = () => {
    for (const t of tensors) {
      ctx.gpu.release(t.buffer);
      t.released = true;
    }
  };
  return { tensors, free };
}

/** Records the pass with config `cfg` into the current scope; returns its output tensor. */
function runPass(ctx: Context, pass: ConvPass, g: ConvGeometry, [a, b]: [Tensor, Tensor], cfg: ConvConfig): Tensor {
  if (pass === 'fwd') {
    const y = ctx.empty([g.outRows, g.cout]);
    forward(ctx, g, a.buffer, b, null, y.buffer, cfg);
    return y;
  }
  if (pass === 'dx') {
    const dx = ctx.empty([g.inRows, g.cin]);
    inputGrad(ctx, g, a.buffer, b, null, dx.buffer, cfg);
    return dx;
  }
  return weightGrad(ctx, g, a.buffer, b.buffer, cfg);
}

/**
 * Allowed |candidate - expected| for operands in [-1, 1]: each output is a sum of n f32
 * products of size <= 1 (fwd: taps*cin_g, dx: taps*cout_g, dw: output rows), whose rounding
 * error is below 1e-7 * n + 1e-6 (the bound test/ops/conv2d.test.ts states and checks with a
 * ~3x margin); `sides` = 2 when both compared values are f32 results. A wrong or missing term
 * (~0.1-1) stays far above it at the shapes tuned.
 */
function tolerance(pass: ConvPass, g: ConvGeometry, sides: number): { atol: number; rtol: number } {
  const n = pass === 'fwd' ? g.kh * g.kw * (g.cin / g.groups) : pass === 'dx' ? g.kh * g.kw * (g.cout / g.groups) : g.outRows;
  return { atol: sides * (1e-7 * n + 1e-6), rtol: 1e-5 };
}

/** Null if every value is within tolerance, else a line naming the worst one. */
function mismatch(got: Float32Array, want: ArrayLike<number>, tol: { atol: number; rtol: number }): string | null {
  if (got.length !== want.length) return `${got.length} values where ${want.length} were expected`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const excess = d - (tol.atol + tol.rtol * Math.abs(want[i]!));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst < 0) return null;
  return `value ${worst}: ${got[worst]} vs ${want[worst]} (tolerance ${tol.atol.toExponential(1)} + ${tol.rtol} * |expected|)`;
}

/**
 * A small awkward shape of the same kind as `g` (kernel, stride, pad, groups, sparse or dense,
 * the same channels-%-4 class so the vec4 choice matches): B2, odd grid sizes, 5-12 channels
 * per group. Sparse: a 2x2 patch mask, one image partly visible, one fully.
 */
function smallGeometry(g: ConvGeometry): ConvGeometry {
  const cinG = (g.cin / g.groups) % 4 === 0 ? 8 : 5;
  const coutG = (g.cout / g.groups) % 4 === 0 ? 12 : 7;
  const sparse = g.inL !== null && !g.inL.isDense;
  const outSize = (n: number, k: number) => Math.floor((n + 2 * g.pad - k) / g.stride) + 1;
  let inH = Math.max(g.kh, 3) + 2 * g.stride + 1;
  let inW = Math.max(g.kw, 3) + 3 * g.stride;
  let inL: SiteLayout | null = null;
  let outL: SiteLayout | null = null;
  if (sparse) {
    // Both grids must be tiled by the 2x2 patches.
    while (inH % 2 || outSize(inH, g.kh) % 2) inH++;
    while (inW % 2 || outSize(inW, g.kw) % 2) inW++;
    const visible = new Uint8Array(8);
    visible.set([1, 0, 0, 1, 1, 1, 1, 1]);
    const mask = new PatchMask(2, 2, 2, visible);
    inL = mask.layoutAt(inH, inW);
    outL = mask.layoutAt(outSize(inH, g.kh), outSize(inW, g.kw));
  }
  const outH = outSize(inH, g.kh);
  const outW = outSize(inW, g.kw);
  return {
    batch: 2, inH, inW, outH, outW, cin: cinG * g.groups, cout: coutG * g.groups, groups: g.groups,
    kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad,
    inRows: inL ? inL.rows : 2 * inH * inW, outRows: outL ? outL.rows : 2 * outH * outW, inL, outL,
    pointwise: g.pointwise,
  };
}

/** Runs `cfg` and reads its output back (eagerly: the tuner is never inside a recording). */
async function output(ctx: Context, pass: ConvPass, g: ConvGeometry, data: [Float32Array, Float32Array], cfg: ConvConfig): Promise<Float32Array> {
  const ops = upload(ctx, pass, g, data);
  try {
    // The read's copy is recorded inside the scope, so the output can go back to the pool.
    return await ctx.tidy(() => {
      const y = runPass(ctx, pass, g, ops.tensors, cfg);
      return ctx.gpu.readFloat32(y.buffer, y.size);
    });
  } finally {
    ops.free();
  }
}

/** The two checks of one candidate; null when it passes. */
async function check(
  ctx: Context, pass: ConvPass, key: string, g: ConvGeometry, cfg: ConvConfig,
  real: { data: [Float32Array, Float32Array]; want: Float32Array | null },
  small: { g: ConvGeometry; data: [Float32Array, Float32Array]; want: Float64Array },
  opts: TuneOptions,
): Promise<string | null> {
  try {
    return await checkOrThrow(ctx, pass, key, g, cfg, real, small, opts);
  } catch (err) {
    // A configuration the launcher or the device refuses is a failed candidate, not a failed tune.
    return `does not run: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function checkOrThrow(
  ctx: Context, pass: ConvPass, key: string, g: ConvGeometry, cfg: ConvConfig,
  real: { data: [Float32Array, Float32Array]; want: Float32Array | null },
  small: { g: ConvGeometry; data: [Float32Array, Float32Array]; want: Float64Array },
  opts: TuneOptions,
): Promise<string | null> {
  const got = await output(ctx, pass, small.g, small.data, cfg);
  const e1 = mismatch(got, small.want, tolerance(pass, small.g, 1));
  if (e1) return `small shape vs the float64 reference: ${e1}`;
  if (real.want) {
    const y = await output(ctx, pass, g, real.data, cfg);
    if (opts.corrupt?.(key, cfg)) y[y.length >> 1]! += 1;
    const e2 = mismatch(y, real.want, tolerance(pass, g, 2));
    if (e2) return `real shape vs the default: ${e2}`;
  }
  return null;
}

// ---- timing -------------------------------------------------------------------------------

async function sampleMs(ctx: Context, run: () => void): Promise<number> {
  const gpu = ctx.gpu;
  await gpu.sync();
  const onGpu = await gpu.timeOnGpu(() => ctx.tidy(run));
  if (onGpu !== null) return onGpu;
  const t0 = performance.now();
  ctx.tidy(run);
  await gpu.sync();
  return performance.now() - t0;
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---- the tuner ----------------------------------------------------------------------------

/**
 * Tunes one key: candidates checked, the survivors timed interleaved within the budget, the
 * winner returned (not yet installed). `stored`: a persisted choice, re-checked, not timed.
 */
export async function tuneKeyNow(
  ctx: Context, pass: ConvPass, g: ConvGeometry, opts: TuneOptions = {}, stored: ConvConfig | null = null,
): Promise<KeyReport> {
  const t0 = performance.now();
  const key = tuneKey(pass, g);
  const rng = new Rng(0x7a11 ^ key.length);
  const realData = operands(pass, g, rng);
  const sg = smallGeometry(g);
  const smallData = operands(pass, sg, rng);
  const small = { g: sg, data: smallData, want: referenceConvPass(sg, pass, ...smallData) };
  const max = Math.max(1, Math.min(opts.maxCandidates ?? MAX_CANDIDATES, MAX_CANDIDATES));
  const configs = stored ? (Object.keys(stored).length ? [{}, stored] : [{}]) : candidatesFor(pass, g, max, opts.candidates?.(pass, g));
  const reports: CandidateReport[] = configs.map((config) => ({ config, label: configLabel(config), rejected: null, samples: [], ms: null }));

  // The default first: the others are compared with its real-shape output.
  const real = { data: realData, want: null as Float32Array | null };
  reports[0]!.rejected = await check(ctx, pass, key, g, {}, real, small, opts);
  if (reports[0]!.rejected) {
    // The untuned kernels disagree with the reference: nothing here can be trusted to compare
    // against, so every candidate is refused and the default stays.
    for (const r of reports.slice(1)) r.rejected = 'not checked: the default itself failed its check';
    opts.log?.(`autotune: ${key}: the default kernels fail their check (${reports[0]!.rejected})`);
    return { key, source: stored ? 'store' : 'timed', candidates: reports, winner: 0, config: {}, ms: performance.now() - t0 };
  }
  real.want = await output(ctx, pass, g, realData, {});
  for (const r of reports.slice(1)) r.rejected = await check(ctx, pass, key, g, r.config, real, small, opts);
  const passed = reports.filter((r) => r.rejected === null);

  if (stored) {
    const ok = reports.length > 1 && reports[1]!.rejected === null;
    const winner = ok ? 1 : 0;
    return { key, source: 'store', candidates: reports, winner, config: reports[winner]!.config, ms: performance.now() - t0 };
  }

  // Time the survivors, interleaved round by round, until the rounds or the budget run out.
  const budget = opts.budgetMs ?? 4000;
  const tStart = performance.now();
  if (passed.length > 1) {
    const { tensors, free } = upload(ctx, pass, g, realData);
    try {
      timing: for (let round = 0; round < (opts.rounds ?? 3); round++) {
        for (const r of passed) {
          if (performance.now() - tStart > budget) break timing;
          r.samples.push(await sampleMs(ctx, () => void runPass(ctx, pass, g, tensors, r.config)));
        }
      }
    } finally {
      free();
    }
  }
  for (const r of reports) r.ms = r.samples.length ? median(r.samples) : null;

  let winner = 0;
  if (opts.choose === 'last') {
    winner = reports.indexOf(passed[passed.length - 1]!);
  } else {
    const base = reports[0]!.ms;
    for (const [i, r] of reports.entries()) {
      if (r.rejected || r.ms === null || base === null) continue;
      if (r.ms < base * (1 - (opts.minGain ?? 0.05)) && r.ms < (reports[winner]!.ms ?? Infinity)) winner = i;
    }
  }
  return { key, source: 'timed', candidates: reports, winner, config: reports[winner]!.config, ms: performance.now() - t0 };
}

/**
 * Tunes every conv key seen on this Gpu and not yet tuned (or `opts.keys`), installs the
 * winners so the conv ops use them from their next dispatch (or recording), and persists
 * them. Must not be called while a step is being recorded. Returns one report per key.
 */
export async function tuneConvs(ctx: Context, opts: TuneOptions = {}): Promise<KeyReport[]> {
  const reg = registry(ctx.gpu);
  const adapter = adapterId(ctx);
  const stored = opts.store ? await opts.store.load(adapter).catch(() => ({}) as Record<string, ConvConfig>) : {};
  let wanted = opts.keys ?? [...reg.seen.keys()];
  if (opts.maxKeys !== undefined) wanted = largestKeys(ctx, wanted, opts.maxKeys);
  const out: KeyReport[] = [];
  let changed = false;
  let done = 0;
  opts.progress?.({ done, total: wanted.length, key: null, report: null });
  const tick = (key: string, report: KeyReport | null) => opts.progress?.({ done: ++done, total: wanted.length, key, report });
  for (const key of wanted) {
    const chosen = reg.chosen.get(key);
    if (chosen) {
      out.push({ key, source: 'memory', candidates: [], winner: -1, config: chosen, ms: 0 });
      tick(key, out[out.length - 1]!);
      continue;
    }
    const seen = reg.seen.get(key);
    if (!seen) throw new Error(`autotune: no conv with key "${key}" has run on this device yet; run the model once first`);
    const { pass, g } = seen;
    if (g.inRows === 0 || g.outRows === 0) {
      tick(key, null);
      continue; // nothing to compute, nothing to tune
    }
    const fromStore = key in stored ? parseConfig(stored[key]) : null;
    if (key in stored && !fromStore) opts.log?.(`autotune: ${key}: the stored entry ${JSON.stringify(stored[key])} is not a kernel configuration; tuning again`);
    let rep = fromStore ? await tuneKeyNow(ctx, pass, g, opts, fromStore) : null;
    if (rep && fromStore && rep.winner !== 1 && Object.keys(fromStore).length) {
      opts.log?.(`autotune: ${key}: the stored choice failed its check (${rep.candidates[1]?.rejected}); tuning again`);
      rep = null;
    }
    rep ??= await tuneKeyNow(ctx, pass, g, opts);
    if (rep.source === 'timed') changed = true;
    reg.chosen.set(key, rep.config);
    reg.seen.delete(key);
    stored[key] = rep.config;
    out.push(rep);
    for (const c of rep.candidates) {
      if (c.rejected && !c.rejected.startsWith('not checked')) opts.log?.(`autotune: ${key}: rejected ${c.label}: ${c.rejected}`);
    }
    tick(key, rep);
  }
  if (opts.store && changed) await opts.store.save(adapter, stored);
  const tuned = out.filter((r) => r.source !== 'memory');
  if (tuned.length) {
    const s = tuned.reduce((t, r) => t + r.ms, 0) / 1000;
    const moved = tuned.filter((r) => r.winner > 0).length;
    const fromStore = tuned.filter((r) => r.source === 'store').length;
    opts.log?.(
      `autotune: ${tuned.length} conv shapes checked in ${s.toFixed(1)} s (${fromStore} from the cache, not re-timed), ` +
        `${moved} use a non-default kernel configuration`,
    );
  }
  return out;
}

/** Multiply-adds of every key handed to tuneConvs with `maxKeys` on a Gpu (its ranking). */
const rankedKeys = new WeakMap<object, Map<string, number>>();

/**
 * The keys of `wanted` among the `max` largest (multiply-adds) of every key ranked on this
 * Gpu so far: a second call after the first tuned the largest leaves the smaller ones alone,
 * rather than tuning the next `max`; a new page ranks the same step the same way.
 */
function largestKeys(ctx: Context, wanted: readonly string[], max: number): string[] {
  const reg = registry(ctx.gpu);
  let known = rankedKeys.get(ctx.gpu);
  if (!known) rankedKeys.set(ctx.gpu, (known = new Map()));
  for (const k of wanted) {
    const g = reg.seen.get(k)?.g;
    if (g) known.set(k, (g.outRows * g.cout * g.kh * g.kw * g.cin) / g.groups);
  }
  const top = [...known].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, Math.max(0, max));
  const keep = new Set(top.map(([k]) => k));
  return wanted.filter((k) => keep.has(k));
}

/** Forgets this Gpu's choices and seen keys (tests, benches comparing tuned and untuned). */
export function resetConvTuning(ctx: Context): void {
  const reg = registry(ctx.gpu);
  reg.chosen.clear();
  reg.seen.clear();
  rankedKeys.delete(ctx.gpu);
}

/** One line per key for the CLI: candidates' ms, checks, the winner. */
export function formatTuneReport(reports: readonly KeyReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`${r.key}  [${r.source}, ${(r.ms / 1000).toFixed(1)} s] -> ${configLabel(r.config)}`);
    for (const [i, c] of r.candidates.entries()) {
      const ms = c.ms === null ? '      -' : c.ms.toFixed(2).padStart(7);
      const mark = i === r.winner ? '*' : ' ';
      lines.push(`  ${mark} ${c.label.padEnd(28)} ${ms} ms  n=${c.samples.length}  ${c.rejected ? `REJECTED: ${c.rejected}` : 'checked ok'}`);
    }
  }
  return lines.join('\n');
}
