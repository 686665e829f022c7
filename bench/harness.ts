/**
 * Benchmark plumbing shared by the suites: timing, records, the printed table.
 * Benchmarks are commands, never tests.
 *
 * Timing: each sample records `inner` back-to-back runs of the workload, submits, and waits
 * for the GPU; the sample is its time / inner. The time is GPU time from timestamp queries
 * where the device has 'timestamp-query' (`Gpu.timeOnGpu`), wall time between two
 * `onSubmittedWorkDone` fences otherwise; `timingMethod` says which. The figure is the
 * median of the samples after warm-up. Submission overhead is amortised over `inner`.
 */
import type { Gpu } from '../src/gpu/gpu.ts';
import type { Context } from '../src/tensor/context.ts';

export interface BenchRecord {
  suite: string;
  name: string;
  impl: string;
  shape: string;
  ms: number;
  gflops: number | null;
  bytes: number | null;
}

export interface TimingOptions {
  warmup?: number;
  samples?: number;
  /** Aim for samples of at least this many ms by repeating the workload. */
  minSampleMs?: number;
}

/** One sample: ms per run of `inner` back-to-back runs of `work` (GPU timestamps where available). */
export async function sampleMs(ctx: Context, work: () => void, inner: number): Promise<number> {
  const gpu = ctx.gpu;
  const runs = () => {
    for (let i = 0; i < inner; i++) ctx.tidy(() => void work());
  };
  await gpu.sync();
  const t0 = performance.now();
  const onGpu = await gpu.timeOnGpu(runs);
  if (onGpu !== null) return onGpu / inner;
  runs();
  await gpu.sync();
  return (performance.now() - t0) / inner;
}

/** Median ms of one run of `work` (recorded inside a tidy scope so buffers recycle). */
export async function timeGpu(ctx: Context, work: () => void, opts: TimingOptions = {}): Promise<number> {
  const { warmup = 1, samples = 5, minSampleMs = 50 } = opts;
  const once = (inner: number) => sampleMs(ctx, work, inner);
  for (let i = 0; i < warmup; i++) await once(1);
  const probe = await once(1);
  const inner = Math.max(1, Math.min(64, Math.ceil(minSampleMs / Math.max(probe, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(await once(inner));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** How `timeGpu` times on this device, for the printed output. */
export function timingMethod(gpu: Gpu): string {
  return gpu.features.has('timestamp-query')
    ? "GPU timestamps ('timestamp-query'), median per run, runs batched between syncs"
    : 'median wall time per run (no timestamp-query), runs batched between GPU syncs';
}

export function record(
  suite: string,
  name: string,
  impl: string,
  shape: string,
  ms: number,
  flops: number | null,
  bytes: number | null = null,
): BenchRecord {
  return { suite, name, impl, shape, ms, gflops: flops === null ? null : flops / (ms * 1e6), bytes };
}

export function formatTable(records: readonly BenchRecord[]): string {
  const head = ['suite', 'name', 'impl', 'shape', 'ms', 'GFLOP/s'];
  const rows = records.map((r) => [
    r.suite,
    r.name,
    r.impl,
    r.shape,
    r.ms.toFixed(3),
    r.gflops === null ? '-' : r.gflops.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function adapterLine(gpu: Gpu): string {
  const a = gpu.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(unnamed)';
  return `adapter: ${name}${a.isFallbackAdapter ? ' (software fallback: shapes scaled down)' : ''}`;
}

/** The middle value (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
