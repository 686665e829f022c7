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
 * - Candidates (`candidatesFor`, autotune-candidates.ts): at most MAX_CANDIDATES kernel
 *   configurations (override constants and launcher switches, never spliced WGSL), the
 *   default first; candidates whose plans (conv-plan.ts) are the same on this shape are
 *   dropped before anything runs.
 * - Checks (autotune-check.ts), before any timing: a candidate's output on the real shape must match the
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
import { Rng } from '../util/rng.ts';
import type { ConvConfig, ConvGeometry, ConvPass } from './conv-plan.ts';
import { referenceConvPass } from './conv-reference.ts';
import { registry, tuneKey } from './conv-tuning.ts';
import { candidatesFor, configLabel, MAX_CANDIDATES, parseConfig } from './autotune-candidates.ts';
import { check, operands, output, runPass, smallGeometry, upload } from './autotune-check.ts';
import { devicePlanOptions } from './conv-launch.ts';

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
  /** Only these keys (default: every key seen and not yet tuned on this Gpu; a Trainer passes its step's). */
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
   * `untuned`: the keys asked for that `maxKeys` leaves to the default kernels.
   */
  progress?: (p: { done: number; total: number; untuned: number; key: string | null; report: KeyReport | null }) => void;
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
  const configs = stored ? (Object.keys(stored).length ? [{}, stored] : [{}]) : candidatesFor(pass, g, devicePlanOptions(ctx), max, opts.candidates?.(pass, g));
  const reports: CandidateReport[] = configs.map((config) => ({ config, label: configLabel(config), rejected: null, samples: [], ms: null }));

  // The default first: the others are compared with its real-shape output.
  const real = { data: realData, want: null as Float32Array | null };
  reports[0]!.rejected = await check(ctx, pass, key, g, {}, real, small, opts.corrupt);
  if (reports[0]!.rejected) {
    // The untuned kernels disagree with the reference: nothing here can be trusted to compare
    // against, so every candidate is refused and the default stays.
    for (const r of reports.slice(1)) r.rejected = 'not checked: the default itself failed its check';
    opts.log?.(`autotune: ${key}: the default kernels fail their check (${reports[0]!.rejected})`);
    return { key, source: stored ? 'store' : 'timed', candidates: reports, winner: 0, config: {}, ms: performance.now() - t0 };
  }
  real.want = await output(ctx, pass, g, realData, {});
  for (const r of reports.slice(1)) r.rejected = await check(ctx, pass, key, g, r.config, real, small, opts.corrupt);
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
  const stored = opts.store
    ? await opts.store.load(adapter).catch((err: unknown) => {
        opts.log?.(`autotune: the stored choices could not be read (${err instanceof Error ? err.message : String(err)}); every shape is timed`);
        return {} as Record<string, ConvConfig>;
      })
    : {};
  const asked = opts.keys ?? [...reg.seen.keys()];
  const wanted = opts.maxKeys !== undefined ? largestKeys(ctx, asked, opts.maxKeys) : asked;
  // Asked for but left to the default kernels by maxKeys (and not tuned before on this Gpu).
  const untuned = asked.filter((k) => !wanted.includes(k) && !reg.chosen.has(k)).length;
  const out: KeyReport[] = [];
  let changed = false;
  let done = 0;
  opts.progress?.({ done, total: wanted.length, untuned, key: null, report: null });
  const tick = (key: string, report: KeyReport | null) => opts.progress?.({ done: ++done, total: wanted.length, untuned, key, report });
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
