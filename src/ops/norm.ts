/**
 * BatchNorm and LayerNorm over feature-map rows [rows, C] (shaders/batchnorm.wgsl,
 * shaders/layernorm.wgsl), forward and backward.
 *
 * BatchNorm's statistics are over ALL ROWS: every site of a dense map, the active sites of the
 * whole batch for a sparse one (the official SparseBatchNorm2d gathers the active rows and runs
 * BatchNorm1d on them). Masked sites have no rows, so they stay 0 (not beta) when scattered.
 * LayerNorm normalizes each row over its C channels (ConvNeXt's LN in both data formats).
 *
 * Per-channel sums over many rows ("column reductions") are split into chunks of rows, one
 * workgroup per (channel tile, chunk), and the per-chunk partials are combined by the same
 * kernel geometry until one chunk is left (see `reduceColumns`); there are no f32 atomics.
 *
 * Outputs and input gradients are stored as x is (the activation dtype, precision.ts);
 * statistics, running statistics and gamma/beta gradients are f32, and every sum runs in f32.
 */
import type { Context } from '../tensor/context.ts';
import type { DType } from '../tensor/precision.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { markGrad } from './common.ts';
import type { UniformValues } from '../gpu/gpu.ts';

const WG = 256;
/** Rows (or partials) each thread of a column reduction walks before the tree. */
const PER_THREAD = 16;

export interface BatchNormState {
  /** Persistent [C] tensors, updated in place on the GPU by training-mode forwards. */
  runningMean: Tensor;
  runningVar: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch's 0.1). */
  momentum?: number;
  eps?: number;
}

// ---- shared helpers ------------------------------------------------------------------------

function nextPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}

/** Channels per workgroup tile in a column reduction: up to 64, fewer for small C. */
function tileChannels(c: number): number {
  return Math.min(64, nextPow2(c));
}

/** Threads per row for LayerNorm's row kernels: about 4 channels each, at most 256. */
function threadsPerRow(c: number): number {
  return Math.min(WG, nextPow2(Math.ceil(c / 4)));
}

interface ColumnParams {
  n: number;
  c: number;
  tiles: number;
  chunks: number;
  inChunks: number;
  perThread: number;
}

/**
 * Per-channel reduction over `n` rows: `partial` reads the rows (with `bufs`) and writes
 * `planes` quantities per (chunk, channel); `combine` merges chunks of partials, repeated
 * until one chunk is left. Returns that chunk: a [planes * C] tensor, plane-major.
 * Each level shrinks the count by 256 / TC * PER_THREAD (>= 64), so 1.6M rows take 4 levels.
 * Not chunks.ts `columnSums`: the quantities are computed from the rows as they are read
 * (Welford triples, dy * xhat) and merged by a rule of their own (Chan's merge), not summed.
 */
function reduceColumns(
  ctx: Context,
  shader: 'batchnorm' | 'layernorm',
  partial: string,
  combine: string,
  bufs: Record<string, GPUBuffer>,
  n: number,
  c: number,
  planes: number,
  pack: (p: ColumnParams) => UniformValues,
  act: DType,
): Tensor {
  const gpu = ctx.gpu;
  const tc = tileChannels(c);
  const rowsPerChunk = (WG / tc) * PER_THREAD;
  const tiles = Math.ceil(c / tc);
  let rows = n;
  let entry = partial;
  let inputs: Record<string, GPUBuffer> = bufs;
  let inChunks = 0;
  for (;;) {
    const chunks = Math.max(1, Math.ceil(rows / rowsPerChunk));
    const out = ctx.empty([planes * chunks * c]);
    // The first pass reads the rows (stored as `act`); the combines read f32 partials only.
    const p = gpu.pipeline(shader, entry, { TC: tc }, { act: entry === partial ? act : 'f32' });
    const packed = pack({ n: rows, c, tiles, chunks, inChunks, perThread: PER_THREAD });
    gpu.dispatch(p, { ...inputs, part_out: out.buffer }, packed, gpu.grid(tiles * chunks));
    if (chunks === 1) return out;
    rows = chunks;
    inChunks = chunks;
    inputs = { part_in: out.buffer };
    entry = combine;
  }
}

/** Copies `count` floats from `src` (at element `offset`) into a new [count] tensor. */
function slice(ctx: Context, src: Tensor, offset: number, count: number): Tensor {
  const t = ctx.empty([count]);
  ctx.gpu.copy(src.buffer, t.buffer, count * 4, offset * 4, 0);
  return t;
}

function checkAffine(op: string, x: Tensor, gamma: Tensor, beta: Tensor): [number, number] {
  if (x.shape.length !== 2) throw new Error(`${op}: x must be [rows, C], got [${x.shape}]`);
  const [n, c] = x.shape as [number, number];
  if (c === 0) throw new Error(`${op}: x has no channels`);
  if (gamma.size !== c || beta.size !== c) {
    throw new Error(`${op}: gamma [${gamma.shape}] and beta [${beta.shape}] must have C = ${c} values`);
  }
  return [n, c];
}

// ---- BatchNorm ---------------------------------------------------------------------------

function bnParams(p: ColumnParams, extra: { offset?: number; eps?: number; momentum?: number } = {}) {
  return {
    n: p.n, c: p.c, tiles: p.tiles, chunks: p.chunks, in_chunks: p.inChunks, per_thread: p.perThread,
    offset: extra.offset ?? 0, eps: extra.eps ?? 0, momentum: extra.momentum ?? 0,
  };
}

/** Params for BatchNorm's per-channel and per-element passes (no column geometry). */
function bnFlat(n: number, c: number, extra: { offset?: number; eps?: number; momentum?: number } = {}) {
  return bnParams({ n, c, tiles: 0, chunks: 0, inChunks: 1, perThread: 0 }, extra);
}

/**
 * BatchNorm over all rows of x [rows, C] (dense: every site; sparse: the active sites of the
 * whole batch). Training normalizes with the batch mean and biased variance and updates
 * `state` in place: running = (1 - momentum) * running + momentum * stat, with the unbiased
 * variance n / (n - 1) for runningVar (not differentiated). Eval normalizes with the running
 * statistics. Output keeps x's layout.
 *
 * rows == 0 (every site masked): an empty output; running statistics are left untouched and
 * gamma/beta get zero gradients. rows == 1 in training throws, as PyTorch does (the unbiased
 * variance is undefined).
 */
export function batchNorm(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  state: BatchNormState,
  opts: BatchNormOptions,
): Tensor {
  const [n, c] = checkAffine('batchNorm', x, gamma, beta);
  if (state.runningMean.size !== c || state.runningVar.size !== c) {
    throw new Error(`batchNorm: running statistics must have C = ${c} values`);
  }
  const training = opts.training;
  if (training && n === 1) {
    throw new Error('batchNorm: expected more than 1 row per channel when training (got 1 row of ' + c + ' channels)');
  }
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const ctx = x.ctx;
  const gpu = ctx.gpu;
  const perChannel = gpu.grid(Math.ceil(c / WG));
  const perElement = gpu.grid(Math.ceil((n * c) / WG));
  const act = x.dtype;
  const y = markGrad(ctx.empty([n, c], x.layout, act), x, gamma, beta);
  // [mean | invstd] used to normalize: batch statistics (training) or a snapshot of the
  // running ones (eval), so a later update of the running stats cannot change the backward.
  const stats = ctx.empty([2 * c]);
  if (training && n > 0) {
    const summary = reduceColumns(ctx, 'batchnorm', 'stats_partial', 'stats_combine', { x: x.buffer }, n, c, 3,
      (p) => bnParams(p), act);
    const batch = ctx.empty([2 * c]); // [mean | unbiased variance]
    gpu.dispatch(gpu.pipeline('batchnorm', 'finalize_train'),
      { part_in: summary.buffer, stats: stats.buffer, part_out: batch.buffer }, bnFlat(n, c, { eps }), perChannel);
    const update = gpu.pipeline('batchnorm', 'running_update');
    gpu.dispatch(update, { part_in: batch.buffer, y: state.runningMean.buffer },
      bnFlat(n, c, { offset: 0, momentum }), perChannel);
    gpu.dispatch(update, { part_in: batch.buffer, y: state.runningVar.buffer },
      bnFlat(n, c, { offset: c, momentum }), perChannel);
  } else if (!training) {
    const running = ctx.empty([2 * c]);
    gpu.copy(state.runningMean.buffer, running.buffer, c * 4, 0, 0);
    gpu.copy(state.runningVar.buffer, running.buffer, c * 4, 0, c * 4);
    gpu.dispatch(gpu.pipeline('batchnorm', 'finalize_eval'),
      { part_in: running.buffer, stats: stats.buffer }, bnFlat(n, c, { eps }), perChannel);
  }
  gpu.dispatch(gpu.pipeline('batchnorm', 'apply', {}, { act }),
    { x: x.buffer, stats: stats.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer },
    bnFlat(n, c), perElement);

  if (y.requiresGrad) {
    ctx.tape.record('batchNorm', [x, gamma, beta] as const, y, (gy) => {
      const wantParams = gamma.requiresGrad || beta.requiresGrad;
      if (n === 0) {
        return [x.requiresGrad ? ctx.empty([0, c], x.layout, act) : null, ctx.zeros([c]), ctx.zeros([c])];
      }
      // sums = [sum dy | sum dy * xhat] per channel: the parameter gradients, and the two
      // batch-statistics terms of the training-mode dx.
      const sums = training || wantParams
        ? reduceColumns(ctx, 'batchnorm', 'grad_partial', 'grad_combine',
          { x: x.buffer, dy: gy.buffer, stats: stats.buffer }, n, c, 2, (p) => bnParams(p), act)
        : null;
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty([n, c], x.layout, act);
        // Training: dx = gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)), since the batch
        // mean and variance depend on x. Eval: the statistics are constants, dx = dy*gamma*invstd.
        const bufs: Record<string, GPUBuffer> = { dy: gy.buffer, gamma: gamma.buffer, stats: stats.buffer, y: dx.buffer };
        if (training) Object.assign(bufs, { x: x.buffer, part_in: sums!.buffer });
        gpu.dispatch(gpu.pipeline('batchnorm', training ? 'dx_train' : 'dx_eval', {}, { act }), bufs, bnFlat(n, c), perElement);
      }
      return [
        dx,
        gamma.requiresGrad ? slice(ctx, sums!, c, c) : null,
        beta.requiresGrad ? slice(ctx, sums!, 0, c) : null,
      ];
    });
  }
  return y;
}

// ---- LayerNorm ---------------------------------------------------------------------------

function lnParams(p: ColumnParams, eps = 0) {
  return { n: p.n, c: p.c, tiles: p.tiles, chunks: p.chunks, in_chunks: p.inChunks, per_thread: p.perThread, eps };
}

/**
 * LayerNorm over the C channels of each row of x [rows, C] (biased variance, as nn.LayerNorm),
 * y = (x - mean) / sqrt(var + eps) * gamma + beta. eps defaults to ConvNeXt's 1e-6.
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-6): Tensor {
  const [n, c] = checkAffine('layerNorm', x, gamma, beta);
  const ctx = x.ctx;
  const gpu = ctx.gpu;
  const tpr = threadsPerRow(c);
  const rowGroups = gpu.grid(Math.ceil(n / (WG / tpr)));
  const flat = lnParams({ n, c, tiles: 0, chunks: 0, inChunks: 0, perThread: 0 }, eps);
  const act = x.dtype;
  const y = markGrad(ctx.empty([n, c], x.layout, act), x, gamma, beta);
  const stats = ctx.empty([2 * n]); // (mean, rstd) per row, for the backward
  gpu.dispatch(gpu.pipeline('layernorm', 'forward', { TPR: tpr }, { act }),
    { x: x.buffer, gamma: gamma.buffer, beta: beta.buffer, stats: stats.buffer, y: y.buffer }, flat, rowGroups);

  if (y.requiresGrad) {
    ctx.tape.record('layerNorm', [x, gamma, beta] as const, y, (gy) => {
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty([n, c], x.layout, act);
        gpu.dispatch(gpu.pipeline('layernorm', 'backward_input', { TPR: tpr }, { act }),
          { x: x.buffer, dy: gy.buffer, gamma: gamma.buffer, stats: stats.buffer, y: dx.buffer }, flat, rowGroups);
      }
      if (!gamma.requiresGrad && !beta.requiresGrad) return [dx, null, null];
      // [sum dy | sum dy * xhat] over rows; rows == 0 gives one chunk of zeros.
      const sums = reduceColumns(ctx, 'layernorm', 'param_partial', 'param_combine',
        { x: x.buffer, dy: gy.buffer, stats: stats.buffer }, n, c, 2, (p) => lnParams(p), act);
      return [
        dx,
        gamma.requiresGrad ? slice(ctx, sums, c, c) : null,
        beta.requiresGrad ? slice(ctx, sums, 0, c) : null,
      ];
    });
  }
  return y;
}
