/**
 * Segmented sums of squares (shaders/segmented.wgsl): the reductions the optimizer needs
 * (per-parameter ||w|| and ||update||, the global gradient norm) without a CPU round trip
 * and without one dispatch chain per parameter.
 *
 * A CPU-built work table splits every segment into chunks of at most CHUNK elements; pass 1
 * runs one workgroup per chunk and writes one partial each, pass 2 runs one workgroup per
 * segment and sums that segment's (contiguous) partials. For a flat buffer that is two
 * dispatches for any number of segments; separate tensors add copies into a staging buffer
 * or a pass 1 per large tensor (see sumsOfSquares). Empty segments get no chunk and sum to 0.
 * Nothing here is recorded on the tape. Not chunks.ts `columnSums`: segments are flat ranges
 * of different lengths, each summed to one value, not the columns of a matrix.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import type { UniformValues } from '../gpu/gpu.ts';

const SHADER = 'segmented';
/** Threads per workgroup in both passes (the tree sums assume 256). */
export const SEGMENT_WG = 256;
/** Elements each thread of pass 1 squares and adds sequentially. */
export const SEGMENT_PER_THREAD = 16;
/** Elements per chunk (one pass-1 workgroup). */
export const SEGMENT_CHUNK = SEGMENT_WG * SEGMENT_PER_THREAD;

export interface Segment {
  offset: number;
  length: number;
}

/**
 * The work table: rows (start, len) for every chunk, segment after segment in the order
 * given, then one row (firstPartial, partialCount) per output slot. `slots[k]` is the output
 * index of segment k (default k), so segments may be processed in another order than their
 * results are written. `chunkRanges[k]` = the chunk rows of segment k.
 */
function plan(segments: readonly Segment[], slots: readonly number[] = segments.map((_, k) => k)) {
  let chunks = 0;
  for (const s of segments) chunks += Math.ceil(s.length / SEGMENT_CHUNK);
  const table = new Uint32Array(2 * (chunks + segments.length));
  const chunkRanges: { first: number; count: number }[] = [];
  let row = 0;
  segments.forEach((s, k) => {
    const first = row;
    for (let start = 0; start < s.length; start += SEGMENT_CHUNK) {
      table[2 * row] = s.offset + start;
      table[2 * row + 1] = Math.min(SEGMENT_CHUNK, s.length - start);
      row++;
    }
    const srow = chunks + slots[k]!;
    table[2 * srow] = first;
    table[2 * srow + 1] = row - first;
    chunkRanges.push({ first, count: row - first });
  });
  return { table, chunks, chunkRanges };
}

/** The table as a scope-owned buffer (bound as array<vec2<u32>>). */
function uploadTable(ctx: Context, table: Uint32Array): Tensor {
  const t = ctx.empty([Math.max(table.length, 1)]);
  ctx.gpu.write(t.buffer, table);
  return t;
}

function pack(count: number, workBase: number, partialBase: number): UniformValues {
  return { count, work_base: workBase, partial_base: partialBase };
}

function chunkPass(ctx: Context, x: GPUBuffer, work: Tensor, partial: Tensor, first: number, count: number): void {
  const gpu = ctx.gpu;
  const pipe = gpu.pipeline(SHADER, 'chunk_sums', { PER_THREAD: SEGMENT_PER_THREAD });
  gpu.dispatch(pipe, { x, work: work.buffer, partial: partial.buffer }, pack(count, first, first), gpu.grid(count));
}

function segmentPass(ctx: Context, work: Tensor, partial: Tensor, chunks: number, segments: number): Tensor {
  const gpu = ctx.gpu;
  const y = ctx.empty([segments]);
  gpu.dispatch(
    gpu.pipeline(SHADER, 'segment_sums'),
    { work: work.buffer, partial: partial.buffer, y: y.buffer },
    pack(segments, chunks, 0),
    gpu.grid(segments),
  );
  return y;
}

/**
 * Per-segment sums of squares of a flat buffer: segments (offset, length) in elements, any
 * lengths (0 allowed, up to tens of millions), many segments (hundreds). Returns a
 * [segments.length] tensor. Not recorded. Two dispatches regardless of the number of segments.
 */
export function segmentedSumOfSquares(flat: Tensor, segments: readonly Segment[]): Tensor {
  for (const s of segments) {
    if (!Number.isInteger(s.offset) || !Number.isInteger(s.length) || s.offset < 0 || s.length < 0 ||
        s.offset + s.length > flat.size) {
      throw new Error(`segmentedSumOfSquares: segment (${s.offset}, ${s.length}) outside a buffer of ${flat.size}`);
    }
  }
  const ctx = flat.ctx;
  const { table, chunks } = plan(segments);
  const work = uploadTable(ctx, table);
  const partial = ctx.empty([Math.max(chunks, 1)]);
  chunkPass(ctx, flat.buffer, work, partial, 0, chunks);
  return segmentPass(ctx, work, partial, chunks, segments.length);
}

export interface StagingLimits {
  /** Tensors of at least this many elements get their own pass-1 dispatch instead of a copy. */
  directMin: number;
  /** Most elements copied into the staging buffer per batch (at least directMin). */
  stagingMax: number;
}

/** 1 M elements direct (see below); batches of up to 16 M elements (64 MiB of staging). */
export const STAGING_LIMITS: StagingLimits = { directMin: 1 << 20, stagingMax: 1 << 24 };

/**
 * Sum of squares of several separate tensors into one [n] tensor. Not recorded.
 *
 * Small tensors (the many biases, norm affines and small convs) are copied into one staging
 * buffer and reduced by a single pass-1 dispatch per batch of up to `stagingMax` elements;
 * tensors of `directMin` elements or more get a pass-1 dispatch on their own buffer (no
 * copy); one pass 2 writes every result, in the order given.
 *
 * Why, measured by a script outside the repository (also in docs/performance.md): 320
 * tensors shaped like ResNet-50 + SparK's densify/decoder (160 of 64..2048, 160 log-uniform
 * 4 K..2.4 M; 63.5 M floats, 22 of them >= 1 M), ms per call as wall time with a sync (the
 * CPU's encoding dominates; 'encode' = CPU time per call before any submit, from 20 calls
 * recorded back to back), two runs on one machine:
 *
 *   variant                                   NVIDIA H100, Dawn/Vulkan     dispatches
 *   pass 1 per tensor                         10.4 / 11.1 (encode 15-17)   321
 *   copy every tensor into staging            4.4 / 4.6   (encode 1.5)     2
 *   this hybrid (directMin 1 M)               3.5 / 3.8   (encode 2.0)     25
 *   elementwise.sumOfSquares per tensor       15.1 / 11.9 (encode 11)      480
 *
 * A dispatch costs a bind group (~50 us of CPU in Dawn); a copy costs memory traffic twice
 * (a 4 MiB tensor: ~3 us on an H100, ~100 us on a laptop GPU at 50-100 GB/s), so 1 M
 * elements is about where copying stops paying on the slowest GPUs we target, and the
 * staging buffer stays small (64 MiB at most), far from the binding-size limit. On
 * SwiftShader (1/16 of the sizes) per-tensor dispatches were also ~1.7x slower than staging.
 */
export function sumsOfSquares(tensors: readonly Tensor[], limits: StagingLimits = STAGING_LIMITS): Tensor {
  if (tensors.length === 0) throw new Error('sumsOfSquares: no tensors');
  if (limits.directMin > limits.stagingMax) throw new Error('sumsOfSquares: directMin must not exceed stagingMax');
  const ctx = tensors[0]!.ctx;
  const gpu = ctx.gpu;
  // Units of pass-1 work: a direct tensor, or a batch of small tensors packed back to back.
  const units: { direct: Tensor | null; members: number[]; elements: number }[] = [];
  let batch: (typeof units)[number] | null = null;
  tensors.forEach((t, k) => {
    if (t.size >= limits.directMin) {
      units.push({ direct: t, members: [k], elements: t.size });
      return;
    }
    if (!batch || batch.elements + t.size > limits.stagingMax) {
      batch = { direct: null, members: [], elements: 0 };
      units.push(batch);
    }
    batch.members.push(k);
    batch.elements += t.size;
  });
  // Segments in unit order; offsets are into the tensor itself or into the staging buffer.
  const segments: Segment[] = [];
  const slots: number[] = [];
  for (const u of units) {
    let at = 0;
    for (const k of u.members) {
      segments.push({ offset: u.direct ? 0 : at, length: tensors[k]!.size });
      slots.push(k);
      at += tensors[k]!.size;
    }
  }
  const { table, chunks, chunkRanges } = plan(segments, slots);
  const work = uploadTable(ctx, table);
  const partial = ctx.empty([Math.max(chunks, 1)]);
  const stagingElements = Math.max(0, ...units.map((u) => (u.direct ? 0 : u.elements)));
  const staging = stagingElements > 0 ? ctx.empty([stagingElements]) : null;
  let seg = 0;
  for (const u of units) {
    const first = chunkRanges[seg]!.first;
    let at = 0;
    for (const k of u.members) {
      const t = tensors[k]!;
      // Commands run in recording order, so refilling the staging buffer waits for the
      // previous batch's pass 1.
      if (!u.direct) gpu.copy(t.buffer, staging!.buffer, t.bytes, 0, at * 4);
      at += t.size;
    }
    seg += u.members.length;
    const last = chunkRanges[seg - 1]!;
    chunkPass(ctx, u.direct ? u.direct.buffer : staging!.buffer, work, partial, first, last.first + last.count - first);
  }
  return segmentPass(ctx, work, partial, chunks, tensors.length);
}
