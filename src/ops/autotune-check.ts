/**
 * The auto-tune's checks of a candidate configuration (autotune.ts), before anything is timed:
 * its output on the real shape against the default's, and on a small awkward shape of the
 * same kind against a float64 CPU conv (conv-reference.ts), within the f32 bound of
 * `tolerance`. Also the operands and the runs the timing reuses.
 */
import type { Context } from '../tensor/context.ts';
import { PatchMask, SiteLayout } from '../tensor/layout.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../util/rng.ts';
import { forward, inputGrad, weightGrad } from './conv-launch.ts';
import { isSparse, type ConvConfig, type ConvGeometry, type ConvPass } from './conv-plan.ts';

/** The pass's operands: fwd (x, w), dx (dy, w), dw (x, dy), uniform in [-1, 1). */
export function operands(pass: ConvPass, g: ConvGeometry, rng: Rng): [Float32Array, Float32Array] {
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const w = () => rand((g.cout * g.cin * g.kh * g.kw) / g.groups);
  if (pass === 'fwd') return [rand(g.inRows * g.cin), w()];
  if (pass === 'dx') return [rand(g.outRows * g.cout), w()];
  return [rand(g.inRows * g.cin), rand(g.outRows * g.cout)];
}

/**
 * The operands as tensors the tuner owns across its awaits (a tidy scope cannot span them);
 * `free` gives their buffers back to the pool.
 */
export function upload(ctx: Context, pass: ConvPass, g: ConvGeometry, [a, b]: [Float32Array, Float32Array]) {
  const make = (data: Float32Array, shape: number[]) => {
    const t = new Tensor(ctx, shape, ctx.gpu.buffer(Math.max(data.length, 1) * 4, 'autotune'));
    ctx.gpu.write(t.buffer, data);
    return t;
  };
  const wShape = [g.cout, g.cin / g.groups, g.kh, g.kw];
  const shapes = {
    fwd: [[g.inRows, g.cin], wShape],
    dx: [[g.outRows, g.cout], wShape],
    dw: [[g.inRows, g.cin], [g.outRows, g.cout]],
  }[pass];
  const tensors: [Tensor, Tensor] = [make(a, shapes[0]!), make(b, shapes[1]!)];
  const free = () => {
    for (const t of tensors) {
      ctx.gpu.release(t.buffer);
      t.released = true;
    }
  };
  return { tensors, free };
}

/** Records the pass with config `cfg` into the current scope; returns its output tensor. */
export function runPass(ctx: Context, pass: ConvPass, g: ConvGeometry, [a, b]: [Tensor, Tensor], cfg: ConvConfig): Tensor {
  if (pass === 'fwd') {
    const y = ctx.empty([g.outRows, g.cout]);
    forward(ctx, g, a.dtype, a.buffer, b, null, y.buffer, cfg);
    return y;
  }
  if (pass === 'dx') {
    const dx = ctx.empty([g.inRows, g.cin]);
    inputGrad(ctx, g, a.dtype, a.buffer, b, null, dx.buffer, cfg);
    return dx;
  }
  return weightGrad(ctx, g, a.dtype, a.buffer, b.buffer, cfg);
}

/**
 * Allowed |candidate - expected| for operands in [-1, 1]: each output is a sum of n f32
 * products of size <= 1 (fwd: taps*cin_g, dx: taps*cout_g, dw: output rows), whose rounding
 * error is below 1e-7 * n + 1e-6 (the bound test/ops/conv2d.test.ts states and checks with a
 * ~3x margin); `sides` = 2 when both compared values are f32 results. A wrong or missing term
 * (~0.1-1) stays far above it at the shapes tuned.
 */
function tolerance(pass: ConvPass, g: ConvGeometry, sides: number): { atol: number; rtol: number } {
  const n = pass === 'fwd' ? g.kh * g.kw * (g.cin / g.groups) : pass === 'dx' ? g.kh * g.kw * (g.cout / g.groups) : g.outRows;
  return { atol: sides * (1e-7 * n + 1e-6), rtol: 1e-5 };
}

/** Null if every value is within tolerance, else a line naming the worst one. */
function mismatch(got: Float32Array, want: ArrayLike<number>, tol: { atol: number; rtol: number }): string | null {
  if (got.length !== want.length) return `${got.length} values where ${want.length} were expected`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const excess = d - (tol.atol + tol.rtol * Math.abs(want[i]!));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst < 0) return null;
  return `value ${worst}: ${got[worst]} vs ${want[worst]} (tolerance ${tol.atol.toExponential(1)} + ${tol.rtol} * |expected|)`;
}

/**
 * A small awkward shape of the same kind as `g` (kernel, stride, pad, groups, sparse or dense,
 * the same channels-%-4 class so the vec4 choice matches): B2, odd grid sizes, 5-12 channels
 * per group. Sparse: a 2x2 patch mask, one image partly visible, one fully.
 */
export function smallGeometry(g: ConvGeometry): ConvGeometry {
  const cinG = (g.cin / g.groups) % 4 === 0 ? 8 : 5;
  const coutG = (g.cout / g.groups) % 4 === 0 ? 12 : 7;
  const sparse = isSparse(g);
  const outSize = (n: number, k: number) => Math.floor((n + 2 * g.pad - k) / g.stride) + 1;
  let inH = Math.max(g.kh, 3) + 2 * g.stride + 1;
  let inW = Math.max(g.kw, 3) + 3 * g.stride;
  let inL: SiteLayout | null = null;
  let outL: SiteLayout | null = null;
  if (sparse) {
    // Both grids must be tiled by the 2x2 patches.
    while (inH % 2 || outSize(inH, g.kh) % 2) inH++;
    while (inW % 2 || outSize(inW, g.kw) % 2) inW++;
    const visible = new Uint8Array(8);
    visible.set([1, 0, 0, 1, 1, 1, 1, 1]);
    const mask = new PatchMask(2, 2, 2, visible);
    inL = mask.layoutAt(inH, inW);
    outL = mask.layoutAt(outSize(inH, g.kh), outSize(inW, g.kw));
  }
  const outH = outSize(inH, g.kh);
  const outW = outSize(inW, g.kw);
  return {
    batch: 2, inH, inW, outH, outW, cin: cinG * g.groups, cout: coutG * g.groups, groups: g.groups,
    kh: g.kh, kw: g.kw, stride: g.stride, pad: g.pad,
    inRows: inL ? inL.rows : 2 * inH * inW, outRows: outL ? outL.rows : 2 * outH * outW, inL, outL,
    pointwise: g.pointwise,
  };
}

/** Runs `cfg` and reads its output back (eagerly: the tuner is never inside a recording). */
export async function output(ctx: Context, pass: ConvPass, g: ConvGeometry, data: [Float32Array, Float32Array], cfg: ConvConfig): Promise<Float32Array> {
  const ops = upload(ctx, pass, g, data);
  try {
    // The read's copy is recorded inside the scope, so the output can go back to the pool.
    return await ctx.tidy(() => {
      const y = runPass(ctx, pass, g, ops.tensors, cfg);
      return ctx.gpu.readFloat32(y.buffer, y.size);
    });
  } finally {
    ops.free();
  }
}

/**
 * The two checks of one candidate; null when it passes. `corrupt` (a test hook) perturbs the
 * real-shape output before it is compared.
 */
export async function check(
  ctx: Context, pass: ConvPass, key: string, g: ConvGeometry, cfg: ConvConfig,
  real: { data: [Float32Array, Float32Array]; want: Float32Array | null },
  small: { g: ConvGeometry; data: [Float32Array, Float32Array]; want: Float64Array },
  corrupt?: (key: string, config: ConvConfig) => boolean,
): Promise<string | null> {
  try {
    return await checkOrThrow(ctx, pass, key, g, cfg, real, small, corrupt);
  } catch (err) {
    // A configuration the launcher or the device refuses is a failed candidate, not a failed tune.
    return `does not run: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function checkOrThrow(
  ctx: Context, pass: ConvPass, key: string, g: ConvGeometry, cfg: ConvConfig,
  real: { data: [Float32Array, Float32Array]; want: Float32Array | null },
  small: { g: ConvGeometry; data: [Float32Array, Float32Array]; want: Float64Array },
  corrupt?: (key: string, config: ConvConfig) => boolean,
): Promise<string | null> {
  const got = await output(ctx, pass, small.g, small.data, cfg);
  const e1 = mismatch(got, small.want, tolerance(pass, small.g, 1));
  if (e1) return `small shape vs the float64 reference: ${e1}`;
  if (real.want) {
    const y = await output(ctx, pass, g, real.data, cfg);
    if (corrupt?.(key, cfg)) y[y.length >> 1]! += 1;
    const e2 = mismatch(y, real.want, tolerance(pass, g, 2));
    if (e2) return `real shape vs the default: ${e2}`;
  }
  return null;
}

