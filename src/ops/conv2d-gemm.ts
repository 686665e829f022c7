/**
 * Launchers for the implicit-GEMM kernels of shaders/conv2d.wgsl, shared by conv2d,
 * convTranspose2d and linear. They work on buffers and a ConvGeometry; the ops own tensors,
 * validation and the tape. See the shader's header for the GEMM of each pass and the tiling.
 */
import type { Context } from '../tensor/context.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { ConvGeometry } from './conv-geometry.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { convConfig, type ConvConfig } from './conv-tuning.ts';
import { directApplies, directInputGrad } from './conv-direct.ts';
import type { UniformValues } from '../gpu/gpu.ts';

const KT = 16;

/**
 * Kernel variants, both kept correct and tested (test/ops/conv2d.test.ts runs its stride-1 and
 * 4-channel cases with each setting); the defaults are the faster on every adapter measured
 * (docs/performance.md). `flipInputGrad`: a dense or submanifold stride-1 conv's input
 * gradient runs as the forward GEMM of dy with the flipped, transposed weight (padding
 * k-1-pad) instead of the input-gradient GEMM. `vec4Gather`: the forward and input-gradient
 * GEMMs gather 4 channels per load when the channels per group they read (cin_g in the
 * forward, cout_g in the input gradient) are a multiple of 4.
 */
export const convVariants = { flipInputGrad: true, vec4Gather: true };
// Per shape, a tuned `ConvConfig` (conv-tuning.ts, chosen by autotune.ts) overrides these
// rules and the tile choice; `forward`, `inputGrad` and `weightGrad` look it up at dispatch.
const PASS = { forward: 0, inputGrad: 1, weightGrad: 2 } as const;
/** Split-K: at least this many rows per chunk, so a chunk's loop amortizes its setup. */
const MIN_CHUNK_ROWS = 128;
/** Split-K: at most this many chunks, and partials of at most this many floats (64 MiB). */
const MAX_CHUNKS = 256;
const MAX_PARTIAL_FLOATS = 16 * 2 ** 20;

function isSparse(g: ConvGeometry): boolean {
  return g.inL !== null && !g.inL.isDense;
}

/** Tile side along a GEMM dimension: 32 when that covers it (less padding waste), else 64. */
function tileFor(n: number): 32 | 64 {
  return n <= 32 ? 32 : 64;
}

function packParams(
  g: ConvGeometry,
  extra: { rows?: number; mTiles?: number; nTiles?: number; chunkRows?: number; chunks?: number; cout?: number },
): UniformValues {
  return {
    batch: g.batch,
    in_h: g.inH,
    in_w: g.inW,
    out_h: g.outH,
    out_w: g.outW,
    cin: g.cin,
    cout: extra.cout ?? g.cout,
    cin_g: g.cin / g.groups,
    cout_g: g.cout / g.groups,
    kh: g.kh,
    kw: g.kw,
    stride: g.stride,
    pad: g.pad,
    rows: extra.rows ?? 0,
    m_tiles: extra.mTiles ?? 0,
    n_tiles: extra.nTiles ?? 0,
    groups: g.groups,
    chunk_rows: extra.chunkRows ?? 0,
    chunks: extra.chunks ?? 0,
  };
}

/**
 * Sparse tables bound by name: `sites` of the walked layout, `row_of` of the gathered one;
 * null (not read: SPARSE is off) for a dense one.
 */
function tables(ctx: Context, walked: SiteLayout | null, read: SiteLayout | null): Record<string, GPUBuffer | null> {
  return {
    sites: walked && !walked.isDense ? ctx.layoutBuffers(walked).sites! : null,
    row_of: read && !read.isDense ? ctx.layoutBuffers(read).rowOf! : null,
  };
}

/**
 * Uploads the sparse tables in the caller's scope before a tidy scope that reads them, so
 * they are made once per scope as usual, not once per call inside the tidy.
 */
function warmTables(ctx: Context, g: ConvGeometry): void {
  if (g.inL) ctx.layoutBuffers(g.inL);
  if (g.outL) ctx.layoutBuffers(g.outL);
}

function launchGemm(
  ctx: Context,
  g: ConvGeometry,
  pass: number,
  dims: { M: number; N: number; mTiles?: number; extra: number; rows: number; chunkRows?: number },
  bufs: Record<string, GPUBuffer | null>,
  hasBias: boolean,
  vec4A = false,
  cfg: ConvConfig = {},
): void {
  const gpu = ctx.gpu;
  const TM = cfg.tm ?? tileFor(dims.M);
  const TN = cfg.tn ?? tileFor(dims.N);
  const mTiles = dims.mTiles ?? Math.ceil(dims.M / TM);
  const nTiles = Math.ceil(dims.N / TN);
  const KTc = cfg.kt ?? KT;
  if (KTc !== KT && (TM !== 32 || TN !== 32)) {
    // The staging arrays hold KT x 32 x 2 floats: a 64-wide tile would overflow them.
    throw new Error(`conv2d: a ${KTc}-row reduction step needs 32x32 tiles (got ${TM}x${TN}); set tm and tn to 32`);
  }
  const z = nTiles * g.groups * dims.extra;
  if (z > gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(`conv2d: ${z} tiles along z (N tiles x groups x ${dims.extra}) exceed the dispatch limit`);
  }
  const p = gpu.pipeline('conv2d', 'gemm', {
    PASS: pass,
    SPARSE: isSparse(g),
    POINTWISE: g.pointwise,
    HAS_BIAS: hasBias,
    VEC4_A: vec4A,
    TM,
    TN,
    RB: cfg.rb ?? 4,
    KT: KTc,
    PACKED_W: cfg.packW ?? true,
  });
  const u = packParams(g, { rows: dims.rows, mTiles, nTiles, chunkRows: dims.chunkRows ?? 0 });
  const [x, y] = gpu.grid(mTiles);
  gpu.dispatch(p, bufs, u, [x, y, z]);
}

/**
 * OIHW -> OHWI (the GEMM's K index contiguous per output channel); 1x1 kernels need none.
 * `flip`: the OHWI weight of `flippedAdjoint(g)`, [cin, taps, cout_g] with the taps reversed.
 * The packed buffer is a tensor of the current scope: callers pack inside a tidy next to the
 * GEMM that reads it, so no packed copy of a weight lives from a forward to its backward.
 */
export function packWeights(ctx: Context, w: Tensor, g: ConvGeometry, flip = false): GPUBuffer {
  if (g.kh * g.kw === 1 && !flip) return w.buffer;
  const packed = ctx.empty(w.shape);
  const gpu = ctx.gpu;
  const p = gpu.pipeline('conv2d', 'pack_weights', { FLIP: flip });
  gpu.dispatch(p, { src: w.buffer, dst: packed.buffer }, packParams(g, {}), gpu.grid(Math.ceil(w.size / 256)));
  return packed.buffer;
}

/** y[outRows, cout] = conv(x) + bias, over the output rows. */
export function gemmForward(
  ctx: Context,
  g: ConvGeometry,
  x: GPUBuffer,
  wp: GPUBuffer,
  bias: GPUBuffer | null,
  y: GPUBuffer,
  cfg: ConvConfig = {},
): void {
  const vec4A = (cfg.vec4 ?? convVariants.vec4Gather) && (g.cin / g.groups) % 4 === 0;
  // gy is read by the weight-gradient pass only; bias and src4 where their constants are on.
  const bufs = { src: x, src4: vec4A ? x : null, wp, gy: null, bias, dst: y, ...tables(ctx, g.outL, g.inL) };
  launchGemm(ctx, g, PASS.forward, { M: g.outRows, N: g.cout / g.groups, extra: 1, rows: g.outRows }, bufs, bias !== null, vec4A, cfg);
}

/**
 * The conv whose forward is `g`'s input gradient, when `g` has stride 1 and a square kernel
 * with pad <= k-1 (dense or submanifold): from g's output grid to its input grid, padding
 * k-1-pad, weight `packWeights(ctx, w, g, true)`. dx[i] = sum over taps t of dy[i + pad - t]
 * w[t] = sum over t' = k-1-t of dy[i - (k-1-pad) + t'] w[k-1-t']: a forward conv. Null
 * otherwise (strided convs keep the sub-pixel input-gradient GEMM).
 */
export function flippedAdjoint(g: ConvGeometry, flip = convVariants.flipInputGrad): ConvGeometry | null {
  if (!flip || g.stride !== 1 || g.kh !== g.kw || g.pad > g.kh - 1 || g.pointwise) return null;
  return {
    batch: g.batch, inH: g.outH, inW: g.outW, outH: g.inH, outW: g.inW, cin: g.cout, cout: g.cin,
    groups: g.groups, kh: g.kh, kw: g.kw, stride: 1, pad: g.kh - 1 - g.pad,
    inRows: g.outRows, outRows: g.inRows, inL: g.outL, outL: g.inL, pointwise: false,
  };
}

/**
 * dx = the input gradient of conv `g` (weight w, OIHW) for output gradient dy, with bias for
 * convT. `cfg`: the tuned config of this shape (conv-tuning.ts) unless given.
 */
export function inputGrad(
  ctx: Context, g: ConvGeometry, dy: GPUBuffer, w: Tensor, bias: GPUBuffer | null, dx: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'dx', g),
): void {
  warmTables(ctx, g);
  ctx.tidy(() => {
    // The direct kernel (an auto-tune choice) where it applies; the GEMMs otherwise.
    if (cfg.direct && directApplies(g)) {
      const packed = cfg.packW !== false;
      return directInputGrad(ctx, g, dy, packed ? packWeights(ctx, w, g) : w.buffer, bias, dx, cfg.direct, packed);
    }
    const ga = flippedAdjoint(g, cfg.flip ?? convVariants.flipInputGrad);
    if (ga) gemmForward(ctx, ga, dy, packWeights(ctx, w, g, true), bias, dx, cfg);
    else gemmInputGrad(ctx, g, dy, cfg.packW === false ? w.buffer : packWeights(ctx, w, g), bias, dx, cfg);
  });
}

/** y = conv `g` of x (weight w, OIHW), the packed weight released right after; `cfg` as inputGrad's. */
export function forward(
  ctx: Context, g: ConvGeometry, x: GPUBuffer, w: Tensor, bias: GPUBuffer | null, y: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'fwd', g),
): void {
  warmTables(ctx, g);
  ctx.tidy(() => gemmForward(ctx, g, x, packWeights(ctx, w, g), bias, y, cfg));
}

/** dW (OIHW) of conv `g`: `gemmWeightGrad` with the tuned config of this shape unless given. */
export function weightGrad(
  ctx: Context, g: ConvGeometry, x: GPUBuffer, dy: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'dw', g),
): Tensor {
  return gemmWeightGrad(ctx, g, x, dy, undefined, cfg);
}

/** Rows and taps of the dense sub-pixel classes (mirrors `input_class` in the shader). */
function classRows(g: ConvGeometry): number[] {
  const s = g.stride;
  const count = (first: number, n: number) => (n > first ? Math.ceil((n - first) / s) : 0);
  const rows: number[] = [];
  for (let cy = 0; cy < s; cy++) {
    for (let cx = 0; cx < s; cx++) {
      const ry = (((cy - g.pad) % s) + s) % s;
      const rx = (((cx - g.pad) % s) + s) % s;
      rows.push(g.batch * count(ry, g.inH) * count(rx, g.inW));
    }
  }
  return rows;
}

/**
 * dx[inRows, cin] = the adjoint of the conv applied to dy (+ bias: convTranspose2d's forward).
 * Dense: stride^2 sub-pixel GEMMs in one dispatch (z = class); sparse: masked taps.
 */
export function gemmInputGrad(
  ctx: Context,
  g: ConvGeometry,
  dy: GPUBuffer,
  wp: GPUBuffer,
  bias: GPUBuffer | null,
  dx: GPUBuffer,
  cfg: ConvConfig = {},
): void {
  const N = g.cin / g.groups;
  const vec4A = (cfg.vec4 ?? convVariants.vec4Gather) && (g.cout / g.groups) % 4 === 0;
  const bufs = { src: dy, src4: vec4A ? dy : null, wp, gy: null, bias, dst: dx, ...tables(ctx, g.inL, g.outL) };
  if (isSparse(g) || g.pointwise) {
    launchGemm(ctx, g, PASS.inputGrad, { M: g.inRows, N, extra: 1, rows: g.inRows }, bufs, bias !== null, vec4A, cfg);
    return;
  }
  const rows = classRows(g);
  const M = Math.max(...rows);
  const TM = cfg.tm ?? tileFor(M);
  // Every class's tiles fit the largest class's count; smaller classes return early.
  launchGemm(
    ctx,
    g,
    PASS.inputGrad,
    { M, N, mTiles: Math.ceil(M / TM), extra: g.stride * g.stride, rows: g.inRows },
    bufs,
    bias !== null,
    vec4A,
    cfg,
  );
}

/** Split of `rows` reduction rows into chunks (split-K), bounded in count and partial memory. */
function chunkPlan(rows: number, floatsPerChunk: number, zPerChunk: number, maxZ: number, minChunkRows = MIN_CHUNK_ROWS) {
  const maxChunks = Math.max(
    1,
    Math.min(MAX_CHUNKS, Math.floor(MAX_PARTIAL_FLOATS / Math.max(floatsPerChunk, 1)), Math.floor(maxZ / zPerChunk)),
  );
  let chunkRows = Math.max(minChunkRows, Math.ceil(rows / maxChunks));
  chunkRows = Math.ceil(chunkRows / KT) * KT;
  return { chunks: Math.max(1, Math.ceil(rows / chunkRows)), chunkRows };
}

/**
 * dW [cout, cin/groups, kh, kw] (OIHW) = sum over output rows of dy[m, co] * A[m, (tap, ci)],
 * split over row chunks into partials, then summed (and unpacked to OIHW) in a second pass.
 */
export function gemmWeightGrad(
  ctx: Context,
  g: ConvGeometry,
  x: GPUBuffer,
  dy: GPUBuffer,
  shape: readonly number[] = [g.cout, g.cin / g.groups, g.kh, g.kw],
  cfg: ConvConfig = {},
): Tensor {
  const gpu = ctx.gpu;
  const coutG = g.cout / g.groups;
  const cinG = g.cin / g.groups;
  const Kg = g.kh * g.kw * cinG;
  const zPerChunk = Math.ceil(Kg / (cfg.tn ?? tileFor(Kg))) * g.groups;
  const plan = chunkPlan(g.outRows, g.cout * Kg, zPerChunk, gpu.limits.maxComputeWorkgroupsPerDimension, cfg.minChunkRows);
  const dw = ctx.empty(shape);
  // The partials go back to the pool as soon as they are summed (a tidy scope).
  warmTables(ctx, g);
  ctx.tidy(() => {
    const partial = ctx.empty([plan.chunks, g.cout * Kg]);
    // The weight-gradient pass reads no weight and adds no bias.
    const bufs = { src: x, src4: null, wp: null, gy: dy, bias: null, dst: partial.buffer, ...tables(ctx, g.outL, g.inL) };
    launchGemm(
      ctx,
      g,
      PASS.weightGrad,
      { M: coutG, N: Kg, extra: plan.chunks, rows: g.outRows, chunkRows: plan.chunkRows },
      bufs,
      false,
      false,
      cfg,
    );
    const p = gpu.pipeline('conv2d', 'reduce_partials');
    gpu.dispatch(
      p,
      { src: partial.buffer, dst: dw.buffer },
      packParams(g, { chunks: plan.chunks }),
      gpu.grid(Math.ceil(dw.size / 256)),
    );
  });
  return dw;
}

/** out[c] = sum over rows of t[r, c], as a [C] tensor (bias gradients): chunked, then summed. */
export function columnSums(ctx: Context, t: GPUBuffer, rows: number, C: number): Tensor {
  const gpu = ctx.gpu;
  const plan = chunkPlan(rows, C, Math.ceil(C / 64), gpu.limits.maxComputeWorkgroupsPerDimension);
  const out = ctx.empty([C]);
  ctx.tidy(() => {
    const partial = ctx.empty([plan.chunks, C]);
    // A 1x1 "geometry" so the shared Params carry C (as cout), rows and the chunking; with
    // cin = 1 the reduce pass reads the partials as [chunk][C][1][1].
    const g1: ConvGeometry = {
      batch: 1, inH: 1, inW: rows, outH: 1, outW: rows, cin: 1, cout: C, groups: 1,
      kh: 1, kw: 1, stride: 1, pad: 0, inRows: rows, outRows: rows, inL: null, outL: null, pointwise: true,
    };
    gpu.dispatch(
      gpu.pipeline('conv2d', 'column_partials'),
      { src: t, dst: partial.buffer },
      packParams(g1, { rows, chunkRows: plan.chunkRows }),
      [Math.ceil(C / 64), plan.chunks],
    );
    gpu.dispatch(
      gpu.pipeline('conv2d', 'reduce_partials'),
      { src: partial.buffer, dst: out.buffer },
      packParams(g1, { chunks: plan.chunks }),
      gpu.grid(Math.ceil(C / 256)),
    );
  });
  return out;
}
