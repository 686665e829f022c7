/**
 * Column reductions over rows without atomics (WGSL has no f32 atomics): a first pass gives
 * each chunk of rows its own slot in `partial[chunks, width]`, and `sumChunks`
 * (shaders/chunks.wgsl) adds the chunks in a second pass, in chunk order (deterministic).
 *
 * `chunkPlan` is the one chunking rule of every such reduction (the conv weight gradient's
 * split-K included); `columnSums` is the whole reduction for a plain [rows, cols] matrix.
 * Ops whose first pass computes what it sums (channel.ts, sparse.ts, depthwise.ts) write the
 * partials themselves and call `sumChunks`.
 *
 * Not column sums of this kind, and so kept apart: norm.ts `reduceColumns` (several statistics
 * per column computed on the fly, combined by a tree of the same kernel until one chunk is
 * left), segmented.ts (sums of squares of flat segments of different lengths), and
 * elementwise.ts `reduce` (one scalar over all elements).
 */
import type { Context } from '../tensor/context.ts';
import type { DType } from '../tensor/precision.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** At most this many chunks, so the second pass loops over few partials per output. */
const MAX_CHUNKS = 256;
/** Partials of at most this many floats (64 MiB). */
export const MAX_PARTIAL_FLOATS = 16 * 2 ** 20;

export interface ChunkPlan {
  /** Number of chunks (>= 1 even for zero rows, so the partials are always written). */
  chunks: number;
  /** Rows per chunk (the last chunk may be shorter). */
  chunkRows: number;
}

export interface ChunkRule {
  /** Floats one chunk's partial holds (the reduction's width); bounds the partials' memory. */
  width?: number;
  /** Rows per chunk are at least this, so a chunk's loop amortizes its setup (default 32). */
  minChunkRows?: number;
  /** Rows per chunk are a multiple of this (the conv GEMM's reduction step). */
  align?: number;
  /** At most this many chunks besides MAX_CHUNKS (the dispatch limit over workgroups per chunk). */
  maxChunks?: number;
}

/** Split of `rows` into chunks, bounded in count, in partial memory and by the dispatch limit. */
export function chunkPlan(rows: number, rule: ChunkRule = {}): ChunkPlan {
  const maxChunks = Math.max(
    1,
    Math.min(MAX_CHUNKS, Math.floor(MAX_PARTIAL_FLOATS / Math.max(rule.width ?? 1, 1)), rule.maxChunks ?? MAX_CHUNKS),
  );
  const align = rule.align ?? 1;
  let chunkRows = Math.max(rule.minChunkRows ?? 32, Math.ceil(rows / maxChunks));
  chunkRows = Math.ceil(chunkRows / align) * align;
  return { chunks: Math.max(1, Math.ceil(rows / chunkRows)), chunkRows };
}

/** out[i] = sum over j of partial[j * width + i], as a new [width] tensor. */
export function sumChunks(ctx: Context, partial: Tensor, chunks: number, width: number): Tensor {
  const out = ctx.empty([width]);
  const gpu = ctx.gpu;
  const p = gpu.pipeline('chunks', 'sum_chunks');
  const u = { width, chunks, rows: 0, chunk_rows: 0 };
  gpu.dispatch(p, { partial: partial.buffer, out: out.buffer }, u, gpu.grid(Math.ceil(width / 256)));
  return out;
}

/** Columns one `column_partials` workgroup covers (64 columns x 4 row lanes). */
const COLUMNS_PER_GROUP = 64;

/**
 * out[c] = sum over rows of src[r, c] for a [rows, cols] matrix stored as `act`, as a new
 * [cols] f32 tensor (bias gradients): chunks of at least 128 rows summed in f32 into partials,
 * then `sumChunks`.
 */
export function columnSums(ctx: Context, src: GPUBuffer, rows: number, cols: number, act: DType = 'f32'): Tensor {
  const gpu = ctx.gpu;
  const groupsX = Math.ceil(cols / COLUMNS_PER_GROUP);
  const maxDim = gpu.limits.maxComputeWorkgroupsPerDimension;
  const plan = chunkPlan(rows, { width: cols, minChunkRows: 128, align: 16, maxChunks: Math.floor(maxDim / groupsX) });
  return ctx.tidy(() => {
    const partial = ctx.empty([plan.chunks, cols]);
    const u = { width: cols, chunks: 0, rows, chunk_rows: plan.chunkRows };
    gpu.dispatch(gpu.pipeline('chunks', 'column_partials', {}, { act }), { src, out: partial.buffer }, u, [groupsX, plan.chunks]);
    return sumChunks(ctx, partial, plan.chunks, cols);
  });
}
