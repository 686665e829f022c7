/**
 * `webspark bench train --profile`: where the replayed SparK step's GPU time goes, by kernel
 * family (bench/profile-families.ts), from timestamp queries around every dispatch of a replay
 * of the recorded step (src/gpu/replay-profile.ts: one compute pass per dispatch, which adds
 * pass overhead a normal replay does not pay).
 *
 * Per family: dispatches, kernel ms, share of kernel time, and throughput: GFLOP/s for the
 * conv families (the useful FLOPs of each conv call: 2 x output rows x cout x cin/groups x
 * kh x kw, active rows only for sparse convs) or GB/s for the rest (bytes the bindings span,
 * counted once: an estimate of bytes read + written). Then the sum of kernel time against the
 * step's wall time from the normal replayed run: the rest is dispatch overhead and idle.
 * Each dispatch's time is the median over `replays` profiled replays.
 */
import type { DispatchNote, Gpu, ProfiledUnit, ReplayProfile } from '../src/gpu/gpu.ts';
import type { Recording } from '../src/gpu/recording.ts';
import type { Context } from '../src/tensor/context.ts';
import type { Batch } from '../src/data/loader.ts';
import { batchToTensor } from '../src/data/batch-tensor.ts';
import { FAMILIES, familyMeasure, familyOf, workNote, type Family } from './profile-families.ts';
import { median } from './harness.ts';

export interface FamilyProfile {
  family: Family;
  dispatches: number;
  ms: number;
  /** Of the summed kernel time. */
  share: number;
  measure: 'flops' | 'bytes';
  /** FLOPs (conv families) or bytes (the rest) of one step in this family. */
  work: number;
  /** GFLOP/s or GB/s: work / ms. */
  rate: number;
  /** Of the peak given with --peak-gflops / --peak-gbps; null without one. */
  ofPeak: number | null;
}

export interface StepProfile {
  /** Timed dispatches of one step: the recorded step's and the input's (the step's count in Gpu.stats). */
  dispatches: number;
  /** Profiled replays each dispatch's median is over. */
  replays: number;
  families: FamilyProfile[];
  /** Sum of the per-dispatch and per-copy times of one replay. */
  kernelMs: number;
  /** First to last timestamp of a profiled replay (median): kernels plus the per-dispatch passes' overhead. */
  profiledSpanMs: number;
  /** ms/step of the normal replayed run (the Trainer's own step time). */
  stepMs: number;
  /** 1 - kernelMs / stepMs: dispatch overhead, submission latency and idle. */
  gapShare: number;
  peaks: { gflops: number | null; gbps: number | null };
  /** The pipelines that took the most kernel time (TOP_PIPELINES of them), slowest first. */
  topPipelines: { label: string; family: Family; dispatches: number; ms: number }[];
}

const TOP_PIPELINES = 15;

/**
 * The part of a step outside its recording: the batch's pixels uploaded and flipped and
 * normalised into the input tensor (the Trainer does it before each replay), timed as a whole.
 */
export interface InputProfile {
  dispatches: number;
  /** Pixel bytes uploaded plus the input tensor written. */
  bytes: number;
  ms: number;
}

export interface ProfileOptions {
  replays?: number;
  peakGflops?: number;
  peakGbps?: number;
}

/** Replays `rec` `replays` times with timestamps; throws where the device lacks 'timestamp-query'. */
export async function profileRecording(gpu: Gpu, rec: Recording, replays: number): Promise<ReplayProfile[]> {
  const runs: ReplayProfile[] = [];
  for (let i = 0; i < replays; i++) {
    const p = await gpu.profileReplay(rec);
    if (!p) throw new Error(noTimestampsMessage());
    runs.push(p);
  }
  return runs;
}

export function noTimestampsMessage(): string {
  return "bench train --profile: this adapter lacks the WebGPU feature 'timestamp-query', so kernels cannot be timed one by one; run without --profile, or on an adapter that has it (`webspark info` lists the features)";
}

/** Times the input batch's upload and normalisation (`replays` times: the median) with GPU timestamps. */
export async function profileInput(ctx: Context, batch: Batch, replays: number): Promise<InputProfile> {
  const gpu = ctx.gpu;
  const times: number[] = [];
  let dispatches = 0;
  let bytes = 0;
  for (let i = 0; i < replays; i++) {
    const before = gpu.stats.dispatches;
    const ms = await gpu.timeOnGpu(() => ctx.tidy(() => void (bytes = batch.pixels.byteLength + batchToTensor(ctx, batch).bytes)));
    if (ms === null) throw new Error(noTimestampsMessage());
    dispatches = gpu.stats.dispatches - before;
    times.push(ms);
  }
  return { dispatches, bytes, ms: median(times) };
}

/**
 * Per-family figures of `runs` (profiled replays of one recording) and `input` (the step's work
 * before the replay, counted under 'copies/data upload') against the step's wall time.
 */
export function summarizeProfile(runs: readonly ReplayProfile[], input: InputProfile, stepMs: number, opts: ProfileOptions = {}): StepProfile {
  const first = runs[0]!;
  const units: ProfiledUnit[] = first.units.map((u, i) => ({ ...u, ms: median(runs.map((r) => r.units[i]!.ms)) }));
  const acc = new Map<Family, { dispatches: number; ms: number; bytes: number; notes: Set<DispatchNote> }>([
    ['copies/data upload', { dispatches: input.dispatches, ms: input.ms, bytes: input.bytes, notes: new Set() }],
  ]);
  for (const u of units) {
    const family = u.kind === 'dispatch' ? familyOf(u.label, u.notes) : 'copies/data upload';
    const a = acc.get(family) ?? { dispatches: 0, ms: 0, bytes: 0, notes: new Set<DispatchNote>() };
    if (u.kind === 'dispatch') {
      a.dispatches++;
      const note = workNote(u.notes);
      if (note) a.notes.add(note);
    }
    a.ms += u.ms;
    a.bytes += u.bytes;
    acc.set(family, a);
  }
  const kernelMs = input.ms + units.reduce((n, u) => n + u.ms, 0);
  const byPipeline = new Map<string, StepProfile['topPipelines'][number]>();
  for (const u of units) {
    if (u.kind !== 'dispatch') continue;
    const p = byPipeline.get(u.label) ?? { label: u.label, family: familyOf(u.label, u.notes), dispatches: 0, ms: 0 };
    p.dispatches++;
    p.ms += u.ms;
    byPipeline.set(u.label, p);
  }
  const peaks = { gflops: opts.peakGflops ?? null, gbps: opts.peakGbps ?? null };
  const families = FAMILIES.filter((f) => acc.has(f)).map((family): FamilyProfile => {
    const a = acc.get(family)!;
    const measure = familyMeasure(family);
    const work = measure === 'flops' ? [...a.notes].reduce((n, x) => n + (x.flops ?? 0), 0) : a.bytes;
    // GFLOP/s and GB/s alike: work / (ms * 1e6).
    const rate = a.ms > 0 ? work / (a.ms * 1e6) : 0;
    const peak = measure === 'flops' ? peaks.gflops : peaks.gbps;
    return { family, dispatches: a.dispatches, ms: a.ms, share: kernelMs > 0 ? a.ms / kernelMs : 0, measure, work, rate, ofPeak: peak ? rate / peak : null };
  });
  return {
    dispatches: input.dispatches + units.filter((u) => u.kind === 'dispatch').length,
    replays: runs.length,
    families,
    kernelMs,
    profiledSpanMs: median(runs.map((r) => r.spanMs)),
    stepMs,
    gapShare: stepMs > 0 ? 1 - kernelMs / stepMs : 0,
    peaks,
    topPipelines: [...byPipeline.values()].sort((a, b) => b.ms - a.ms).slice(0, TOP_PIPELINES),
  };
}

export function formatProfile(p: StepProfile): string {
  const head = ['family', 'dispatches', 'kernel ms', 'share', 'rate', ...(p.peaks.gflops || p.peaks.gbps ? ['of peak'] : [])];
  const rows = p.families.map((f) => [
    f.family,
    String(f.dispatches),
    f.ms.toFixed(3),
    `${(100 * f.share).toFixed(1)} %`,
    `${f.rate.toFixed(f.rate < 10 ? 2 : 1)} ${f.measure === 'flops' ? 'GFLOP/s' : 'GB/s'}`,
    ...(head.length > 5 ? [f.ofPeak === null ? '-' : `${(100 * f.ofPeak).toFixed(1)} %`] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const gap = p.stepMs - p.kernelMs;
  return [
    `profile of the replayed step: ${p.dispatches} dispatches, each timed by timestamp queries in its own compute pass (median of ${p.replays} profiled replays);`,
    '  copies/data upload includes the input batch upload + flip/normalize the Trainer runs before each replay, timed as a whole',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `  kernel time ${p.kernelMs.toFixed(2)} ms/step summed; step wall time ${p.stepMs.toFixed(2)} ms/step (normal replayed run); gap ${gap.toFixed(2)} ms = ${(100 * p.gapShare).toFixed(1)} % (dispatch overhead, submission latency, idle)`,
    `  profiled replay span ${p.profiledSpanMs.toFixed(2)} ms (first to last timestamp; one pass per dispatch adds overhead a normal replay does not pay)`,
    '  GFLOP/s: useful conv FLOPs (2 x output rows x cout x cin/groups x kh x kw; active rows of sparse convs) per kernel ms.',
    '  GB/s: bytes the bindings span, each counted once per dispatch (an estimate of bytes read + written; pooled buffers round up).',
    `slowest pipelines (shader:entry:constants; a pipeline's family is that of its first dispatch):`,
    ...p.topPipelines.map((x) => `  ${x.ms.toFixed(3).padStart(9)} ms  ${String(x.dispatches).padStart(4)} x  ${x.family.padEnd(18)}  ${x.label}`),
  ].join('\n');
}
