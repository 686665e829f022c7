/**
 * Split reductions over rows without atomics (WGSL has no f32 atomics): an op's first pass
 * gives each chunk of rows its own slot in `partial[chunks, width]`, and `sumChunks`
 * (shaders/chunks.wgsl) adds the chunks in a second pass.
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** Rows per chunk are at least this, so a chunk's loop amortizes its setup. */
const MIN_CHUNK_ROWS = 32;
/** At most this many chunks, so the second pass loops over few partials per output. */
const MAX_CHUNKS = 256;

export interface ChunkPlan {
  /** Number of chunks (>= 1 even for zero rows, so the partials are always written). */
  chunks: number;
  /** Rows per chunk (the last chunk may be shorter). */
  chunkRows: number;
}

export function chunkPlan(rows: number): ChunkPlan {
  const chunkRows = Math.max(MIN_CHUNK_ROWS, Math.ceil(rows / MAX_CHUNKS));
  return { chunks: Math.max(1, Math.ceil(rows / chunkRows)), chunkRows };
}

/** out[i] = sum over j of partial[j * width + i], as a new [width] tensor. */
export function sumChunks(ctx: Context, partial: Tensor, chunks: number, width: number): Tensor {
  const out = ctx.empty([width]);
  const gpu = ctx.gpu;
  const p = gpu.pipeline('chunks', 'sum_chunks');
  gpu.dispatch(p, { partial: partial.buffer, out: out.buffer }, { width, chunks }, gpu.grid(Math.ceil(width / 256)));
  return out;
}
