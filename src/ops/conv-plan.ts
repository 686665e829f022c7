/**
 * Every launch rule of the conv kernels (shaders/conv2d.wgsl, shaders/conv-direct.wgsl), in one
 * place: tile choice, the flipped stride-1 input gradient, the vec4 gather, the reduction-step
 * constraint, weight packing, split-K chunking, the direct kernel. `planConv` turns a pass, a
 * geometry and a `ConvConfig` into a `ConvPlan`: the launches to run, as plain data (shader,
 * entry point, override constants, uniform fields by name, buffers by binding name, grid).
 *
 * The conv ops run plans (conv-launch.ts); the auto-tune builds the plans of its candidate
 * configs with the same function and compares them (autotune-candidates.ts), so a rule
 * changed here changes both. Nothing here touches a device: plans are pure functions of their
 * inputs.
 */
import type { StorageVariant } from '../gpu/gpu.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { DType } from '../tensor/precision.ts';
import { chunkPlan } from './chunks.ts';

/** A conv from an input grid to an output grid; out = floor((in + 2*pad - k) / stride) + 1. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  cin: number;
  cout: number;
  groups: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  /** Rows stored for each grid (sparse: active sites only). */
  inRows: number;
  outRows: number;
  /** Sparse layouts (both sides are sparse, or both dense). */
  inL: SiteLayout | null;
  outL: SiteLayout | null;
  /** 1x1, stride 1, pad 0 on one layout: the gathered row is the walked row. */
  pointwise: boolean;
}

/** The three conv passes: forward, input gradient (= convT forward), weight gradient. */
export type ConvPass = 'fwd' | 'dx' | 'dw';

/**
 * A kernel configuration: override constants of the conv shaders and launcher choices, never
 * a different shader text. The empty config is the default (the faster on every adapter
 * measured, docs/performance.md); the auto-tune may choose another per shape.
 */
export interface ConvConfig {
  /** Rows of C per thread: 4 (4x4 register blocks, 256 threads at 64x64) or 8 (8x4, 128). */
  rb?: 4 | 8;
  /** Tile rows (M) / columns (N); default 32 when the GEMM dimension is <= 32, else 64. */
  tm?: 32 | 64;
  tn?: 32 | 64;
  /** Reduction rows per step (per barrier pair): 16, or 32 with 32x32 tiles only. */
  kt?: 16 | 32;
  /** The vec4 channel gather of the forward / input-gradient GEMMs (default on). */
  vec4?: boolean;
  /** Input gradient (GEMM, not the flipped form, or direct): false reads the OIHW weight unpacked (no pack dispatch). */
  packW?: boolean;
  /** Input gradient only (dense, not 1x1): the direct kernel instead of a GEMM, this many pixels per invocation. */
  direct?: 1 | 2 | 4;
  /** Input gradient only: the flipped stride-1 form (default on). */
  flip?: boolean;
  /** Weight gradient only: least rows per split-K chunk (a multiple of 16); default 128. */
  minChunkRows?: number;
}

/**
 * What a launch binds: the pass's operands (`a`, `b`: fwd x and w, dx dy and w, dw x and dy;
 * `bias`; `out`), a temporary of the plan (`packed` weight, split-K `partial`s), or a sparse
 * table of the geometry's input or output layout.
 */
export type ConvOperand = 'a' | 'b' | 'bias' | 'out' | 'packed' | 'partial' | 'in.sites' | 'in.rowOf' | 'out.sites' | 'out.rowOf';

export interface ConvLaunch {
  shader: 'conv2d' | 'conv-direct';
  entry: string;
  constants: Record<string, number | boolean>;
  /**
   * Storage types (the `act` / `act_out` aliases): the GEMM and direct passes read and write
   * activations as `act`, except that the weight-gradient GEMM writes f32 partial sums; the
   * weight packing and the split-K reduction touch only f32 weights and partials.
   */
  variant: StorageVariant;
  /** The shader's `struct Params` fields by name (padding fields left out). */
  params: Record<string, number>;
  /** Every binding the entry point names; null where an override constant switches its reads off. */
  buffers: Record<string, ConvOperand | null>;
  grid: [number, number, number];
}

export interface ConvPlan {
  /** Temporaries the launches write and read: floats of each. */
  temps: Partial<Record<'packed' | 'partial', number>>;
  launches: ConvLaunch[];
}

export interface PlanOptions {
  /** A bias is bound and added (forward, and the transposed conv's forward = dx). */
  bias: boolean;
  /** The device's maxComputeWorkgroupsPerDimension. */
  maxWorkgroups: number;
  /** The dtype of the activations (x, y, dy, dx; default f32); weights and dW are f32. */
  act?: DType;
  /**
   * 32x32 tiles for every GEMM a config leaves to the default (else 32 or 64 by dimension,
   * `tileFor`). For software adapters: each conv kernel variant costs about a second of shader
   * compile there, and a CPU runs 32x32 tiles about as fast as 64-wide ones, so fewer variants
   * is what counts. The shipped demo model's forward (ResNet-18 at 128 px) compiles 21
   * pipelines instead of 27, and the demo's first reconstruction in Chromium on SwiftShader
   * takes 17.1 s from navigation instead of 25.5-31.3 s on a 2-core CPU
   * (`npx vitest run test/app/demo-default.test.ts` prints it).
   */
  uniformTiles?: boolean;
}

/** The part of PlanOptions a device decides (conv-launch.ts `devicePlanOptions`). */
export type DevicePlanOptions = Pick<PlanOptions, 'maxWorkgroups' | 'uniformTiles'>;

/** The GEMM passes' PASS constant. */
const PASS = { fwd: 0, dx: 1, dw: 2 } as const;
/** The default reduction step. */
const KT = 16;
/** Invocations per workgroup of the direct kernel (its WG) and of the 256-thread helpers. */
const DIRECT_WG = 64;
const HELPER_WG = 256;

export function isSparse(g: ConvGeometry): boolean {
  return g.inL !== null && !g.inL.isDense;
}

/** Tile side along a GEMM dimension: 32 when that covers it (less padding waste), else 64; 32 with `uniformTiles`. */
function tileFor(n: number, opts: PlanOptions): 32 | 64 {
  return opts.uniformTiles || n <= 32 ? 32 : 64;
}

/**
 * Null if tiles TM x TN allow a `kt`-row reduction step, else why not: the staging arrays hold
 * 16 x 64 (= 32 x 32) vec4 slots per operand, so a 32-row step needs 32x32 tiles.
 */
export function reductionStepRefusal(kt: number, tm: number | undefined, tn: number | undefined): string | null {
  if (kt === KT || (tm === 32 && tn === 32)) return null;
  return `a ${kt}-row reduction step needs 32x32 tiles (got ${tm ?? 'default'}x${tn ?? 'default'}); set tm and tn to 32`;
}

/** `n` workgroups as an x, y grid within the per-dimension limit. */
export function grid2d(n: number, maxDim: number): [number, number] {
  if (n <= maxDim) return [Math.max(n, 0), 1];
  const y = Math.ceil(n / maxDim);
  return [Math.ceil(n / y), y];
}

/** The flipped stride-1 input gradient applies: stride 1, square kernel, pad <= k-1, not 1x1. */
export function flipApplies(g: ConvGeometry): boolean {
  return g.stride === 1 && g.kh === g.kw && g.pad <= g.kh - 1 && !g.pointwise;
}

/**
 * The conv whose forward is `g`'s input gradient, when `flipApplies(g)`: from g's output grid
 * to its input grid, padding k-1-pad, weight packed with FLIP. dx[i] = sum over taps t of
 * dy[i + pad - t] w[t] = sum over t' = k-1-t of dy[i - (k-1-pad) + t'] w[k-1-t']: a forward
 * conv. Null otherwise (strided convs keep the sub-pixel input-gradient GEMM).
 */
export function flippedAdjoint(g: ConvGeometry): ConvGeometry | null {
  if (!flipApplies(g)) return null;
  return {
    batch: g.batch, inH: g.outH, inW: g.outW, outH: g.inH, outW: g.inW, cin: g.cout, cout: g.cin,
    groups: g.groups, kh: g.kh, kw: g.kw, stride: 1, pad: g.kh - 1 - g.pad,
    inRows: g.outRows, outRows: g.inRows, inL: g.outL, outL: g.inL, pointwise: false,
  };
}

/**
 * The direct input-gradient kernel applies: dense and not 1x1 (a sparse input gradient walks
 * active rows through site tables the kernel does not read; a pointwise one is a plain matmul
 * whose rows need not form a grid).
 */
export function directApplies(g: ConvGeometry): boolean {
  return !isSparse(g) && !(g.outL !== null && !g.outL.isDense) && !g.pointwise;
}

/** The conv uniform (shaders/conv-params.wgsl) of `g`; `extra` sets the GEMM's per-launch fields. */
function convParams(g: ConvGeometry, extra: { rows?: number; m_tiles?: number; n_tiles?: number; chunk_rows?: number; chunks?: number }) {
  return {
    batch: g.batch, in_h: g.inH, in_w: g.inW, out_h: g.outH, out_w: g.outW, cin: g.cin, cout: g.cout,
    cin_g: g.cin / g.groups, cout_g: g.cout / g.groups, kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad,
    rows: extra.rows ?? 0, m_tiles: extra.m_tiles ?? 0, n_tiles: extra.n_tiles ?? 0, groups: g.groups,
    chunk_rows: extra.chunk_rows ?? 0, chunks: extra.chunks ?? 0,
  };
}

/** Sparse tables by binding name: `sites` of the walked side, `row_of` of the gathered one. */
function tables(g: ConvGeometry, walked: 'in' | 'out', read: 'in' | 'out'): Record<'sites' | 'row_of', ConvOperand | null> {
  const sparse = isSparse(g);
  return { sites: sparse ? `${walked}.sites` : null, row_of: sparse ? `${read}.rowOf` : null };
}

/** OIHW -> OHWI into `packed` (FLIP: the OHWI weight of `flippedAdjoint(g)`, taps reversed). */
function packLaunch(g: ConvGeometry, flip: boolean, maxDim: number): ConvLaunch {
  const size = (g.cout * g.cin * g.kh * g.kw) / g.groups;
  return {
    shader: 'conv2d', entry: 'pack_weights', constants: { FLIP: flip }, variant: {}, params: convParams(g, {}),
    buffers: { src: 'b', dst: 'packed' }, grid: [...grid2d(Math.ceil(size / HELPER_WG), maxDim), 1],
  };
}

/** `launch`, after packing the weight into `packed` when `pack` (FLIP: for the flipped form). */
function afterPacking(g: ConvGeometry, pack: boolean, flip: boolean, opts: PlanOptions, launch: ConvLaunch): ConvPlan {
  if (!pack) return { temps: {}, launches: [launch] };
  return { temps: { packed: weightFloats(g) }, launches: [packLaunch(g, flip, opts.maxWorkgroups), launch] };
}

interface GemmDims {
  M: number;
  N: number;
  /** M tiles dispatched (default: those of M). */
  mTiles?: number;
  /** z multiplier besides N tiles and groups: sub-pixel classes (dx) or row chunks (dw). */
  extra: number;
  rows: number;
  chunkRows?: number;
  /** The channels the A gather reads per group (fwd cin_g, dx cout_g); none in dw. */
  gatherChannels?: number;
}

/** One launch of the `gemm` entry point: tiles, the kt rule, vec4, the z limit. */
function gemmLaunch(
  g: ConvGeometry, pass: ConvPass, dims: GemmDims, buffers: Record<string, ConvOperand | null>, cfg: ConvConfig, opts: PlanOptions,
): ConvLaunch {
  const TM = cfg.tm ?? tileFor(dims.M, opts);
  const TN = cfg.tn ?? tileFor(dims.N, opts);
  const kt = cfg.kt ?? KT;
  const refusal = reductionStepRefusal(kt, TM, TN);
  if (refusal) throw new Error(`conv2d: ${refusal}`);
  const mTiles = dims.mTiles ?? Math.ceil(dims.M / TM);
  const nTiles = Math.ceil(dims.N / TN);
  const z = nTiles * g.groups * dims.extra;
  if (z > opts.maxWorkgroups) {
    throw new Error(`conv2d: ${z} tiles along z (N tiles x groups x ${dims.extra}) exceed the dispatch limit`);
  }
  const vec4 = dims.gatherChannels !== undefined && (cfg.vec4 ?? true) && dims.gatherChannels % 4 === 0;
  const hasBias = opts.bias && pass !== 'dw';
  const bound = { src4: vec4 ? buffers.src! : null, bias: hasBias ? ('bias' as const) : null, ...buffers };
  const constants: Record<string, number | boolean> = {
    PASS: PASS[pass], SPARSE: isSparse(g), POINTWISE: g.pointwise, HAS_BIAS: hasBias, VEC4_A: vec4,
    TM, TN, RB: cfg.rb ?? 4, KT: kt,
  };
  // For a 1x1 kernel OIHW is OHWI: the same addresses either way, so the same kernel.
  if (pass === 'dx') constants.PACKED_W = g.kh * g.kw === 1 || cfg.packW !== false;
  const params = convParams(g, { rows: dims.rows, m_tiles: mTiles, n_tiles: nTiles, chunk_rows: dims.chunkRows ?? 0 });
  const act = opts.act ?? 'f32';
  const variant: StorageVariant = pass === 'dw' ? { act, out: 'f32' } : { act };
  return { shader: 'conv2d', entry: 'gemm', constants, variant, params, buffers: bound, grid: [...grid2d(mTiles, opts.maxWorkgroups), z] };
}

/** y[outRows, cout] = conv(x) + bias over the output rows (the OHWI weight; 1x1 needs no packing). */
function forwardLaunches(g: ConvGeometry, cfg: ConvConfig, opts: PlanOptions, flip: boolean): ConvPlan {
  const fg = flip ? flippedAdjoint(g)! : g;
  const pack = flip || g.kh * g.kw > 1;
  // The flipped form walks g's input grid and gathers from its output grid.
  const [walked, read] = flip ? (['in', 'out'] as const) : (['out', 'in'] as const);
  const gemm = gemmLaunch(
    fg, 'fwd',
    { M: fg.outRows, N: fg.cout / fg.groups, extra: 1, rows: fg.outRows, gatherChannels: fg.cin / fg.groups },
    { src: 'a', wp: pack ? 'packed' : 'b', gy: null, dst: 'out', ...tables(g, walked, read) }, cfg, opts,
  );
  return afterPacking(g, pack, flip, opts, gemm);
}

function weightFloats(g: ConvGeometry): number {
  return (g.cout * g.cin * g.kh * g.kw) / g.groups;
}

/** Rows of each dense sub-pixel class of the input gradient (mirrors `input_class` in the shader). */
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
 * dx[inRows, cin] = the adjoint of the conv applied to dy (+ bias). Dense: stride^2 sub-pixel
 * GEMMs in one dispatch (z = class; every class's tiles fit the largest class's count, smaller
 * classes return early); sparse and 1x1: one GEMM over the input rows.
 */
function inputGradGemm(g: ConvGeometry, cfg: ConvConfig, opts: PlanOptions): ConvPlan {
  const pack = cfg.packW !== false && g.kh * g.kw > 1;
  const N = g.cin / g.groups;
  const buffers = { src: 'a', wp: pack ? 'packed' : 'b', gy: null, dst: 'out', ...tables(g, 'in', 'out') } as const;
  let dims: GemmDims;
  if (isSparse(g) || g.pointwise) {
    dims = { M: g.inRows, N, extra: 1, rows: g.inRows, gatherChannels: g.cout / g.groups };
  } else {
    const M = Math.max(...classRows(g));
    const mTiles = Math.ceil(M / (cfg.tm ?? tileFor(M, opts)));
    dims = { M, N, mTiles, extra: g.stride * g.stride, rows: g.inRows, gatherChannels: g.cout / g.groups };
  }
  const gemm = gemmLaunch(g, 'dx', dims, buffers, cfg, opts);
  return afterPacking(g, pack, false, opts, gemm);
}

/**
 * The direct input gradient (conv-direct.wgsl): one invocation per `px` input pixels of one
 * sub-pixel column class and 4 input channels, from the OHWI packed weight, or the OIHW one
 * when `packW` is false.
 */
function directLaunches(g: ConvGeometry, px: number, cfg: ConvConfig, opts: PlanOptions): ConvPlan {
  if (px !== 1 && px !== 2 && px !== 4) throw new Error(`conv2d: the direct kernel takes 1, 2 or 4 pixels per invocation (got ${px})`);
  const packed = cfg.packW !== false;
  const pack = packed && g.kh * g.kw > 1;
  const cinG = g.cin / g.groups;
  const coutG = g.cout / g.groups;
  const vec4 = cinG % 4 === 0 && coutG % 4 === 0;
  const xslots = Math.ceil(Math.ceil(g.inW / g.stride) / px);
  const invocations = g.batch * g.inH * g.stride * xslots * g.groups * Math.ceil(cinG / 4);
  const wp: ConvOperand = pack ? 'packed' : 'b';
  const buffers = { gy: 'a', gy4: vec4 ? 'a' : null, wp, wp4: vec4 && packed ? wp : null, bias: opts.bias ? 'bias' : null, dst: 'out' } as const;
  const direct: ConvLaunch = {
    shader: 'conv-direct', entry: 'direct_input_grad',
    constants: { HAS_BIAS: opts.bias, VEC4: vec4, WG: DIRECT_WG, PX: px, PACKED_W: packed },
    variant: { act: opts.act ?? 'f32' },
    params: convParams(g, {}),
    buffers, grid: [...grid2d(Math.ceil(invocations / DIRECT_WG), opts.maxWorkgroups), 1],
  };
  return afterPacking(g, pack, false, opts, direct);
}

/**
 * dW (OIHW) = sum over output rows of dy[m, co] * A[m, (tap, ci)]: split-K over row chunks into
 * `partial`, then `reduce_partials` sums the chunks in order and unpacks to OIHW.
 */
function weightGradLaunches(g: ConvGeometry, cfg: ConvConfig, opts: PlanOptions): ConvPlan {
  const Kg = g.kh * g.kw * (g.cin / g.groups);
  const zPerChunk = Math.ceil(Kg / (cfg.tn ?? tileFor(Kg, opts))) * g.groups;
  const chunks = chunkPlan(g.outRows, {
    width: g.cout * Kg, minChunkRows: cfg.minChunkRows ?? 128, align: KT, maxChunks: Math.floor(opts.maxWorkgroups / zPerChunk),
  });
  const gemm = gemmLaunch(
    g, 'dw',
    { M: g.cout / g.groups, N: Kg, extra: chunks.chunks, rows: g.outRows, chunkRows: chunks.chunkRows },
    { src: 'a', wp: null, gy: 'b', dst: 'partial', ...tables(g, 'out', 'in') }, cfg, opts,
  );
  const reduce: ConvLaunch = {
    shader: 'conv2d', entry: 'reduce_partials', constants: {}, variant: {}, params: convParams(g, { chunks: chunks.chunks }),
    buffers: { src: 'partial', dst: 'out' }, grid: [...grid2d(Math.ceil(weightFloats(g) / HELPER_WG), opts.maxWorkgroups), 1],
  };
  return { temps: { partial: chunks.chunks * g.cout * Kg }, launches: [gemm, reduce] };
}

/** The launches of `pass` on geometry `g` under config `cfg` (throws for a config the kernels refuse). */
export function planConv(pass: ConvPass, g: ConvGeometry, cfg: ConvConfig, opts: PlanOptions): ConvPlan {
  if (pass === 'fwd') return forwardLaunches(g, cfg, opts, false);
  if (pass === 'dw') return weightGradLaunches(g, cfg, opts);
  if (cfg.direct) {
    if (directApplies(g)) return directLaunches(g, cfg.direct, cfg, opts);
    // A tuned direct config on a shape it does not apply to runs the GEMMs.
  }
  if ((cfg.flip ?? true) && flipApplies(g)) return forwardLaunches(g, cfg, opts, true);
  return inputGradGemm(g, cfg, opts);
}
