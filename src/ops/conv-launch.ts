/**
 * Runs the conv plans of conv-plan.ts on buffers: the conv ops (conv2d.ts, matmul.ts) call
 * `forward`, `inputGrad` and `weightGrad` here, which look up the shape's config (the tuned one,
 * conv-tuning.ts, unless the caller gives one), build the plan and dispatch its launches.
 * Ops own tensors, validation and the tape; every launch rule lives in conv-plan.ts.
 */
import type { Context } from '../tensor/context.ts';
import type { DType } from '../tensor/precision.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { planConv, type ConvConfig, type ConvGeometry, type ConvOperand, type ConvPass, type ConvPlan, type DevicePlanOptions } from './conv-plan.ts';
import { convConfig } from './conv-tuning.ts';

export interface ConvBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  bias?: GPUBuffer | null;
  out: GPUBuffer;
}

/**
 * Dispatches `plan` on geometry `g`'s buffers; its temporaries (packed weight, partials) go
 * back to the pool as soon as the plan has run (a tidy scope), so no packed copy of a weight
 * lives from a forward to its backward.
 */
export function runConvPlan(ctx: Context, g: ConvGeometry, plan: ConvPlan, buffers: ConvBuffers): void {
  // The sparse tables are made in the caller's scope, once per scope as usual, not per call.
  const layouts = { in: g.inL ? ctx.layoutBuffers(g.inL) : null, out: g.outL ? ctx.layoutBuffers(g.outL) : null };
  ctx.tidy(() => {
    const known: Partial<Record<ConvOperand, GPUBuffer | null>> = {
      a: buffers.a, b: buffers.b, bias: buffers.bias ?? null, out: buffers.out,
      'in.sites': layouts.in?.sites, 'in.rowOf': layouts.in?.rowOf, 'out.sites': layouts.out?.sites, 'out.rowOf': layouts.out?.rowOf,
    };
    for (const [name, floats] of Object.entries(plan.temps)) known[name as ConvOperand] = ctx.empty([floats]).buffer;
    const gpu = ctx.gpu;
    for (const l of plan.launches) {
      const bound: Record<string, GPUBuffer | null> = {};
      for (const [binding, operand] of Object.entries(l.buffers)) {
        // null: the launch does not read this binding (an override constant switches it off).
        if (operand === null) {
          bound[binding] = null;
          continue;
        }
        const buf = known[operand];
        if (!buf) throw new Error(`conv plan: ${l.entry} binds ${binding} to ${operand}, which this call does not have`);
        bound[binding] = buf;
      }
      gpu.dispatch(gpu.pipeline(l.shader, l.entry, l.constants, l.variant), bound, l.params, l.grid);
    }
  });
}

/**
 * The useful FLOPs of conv `g` (the same for its forward, input-gradient and weight-gradient
 * passes): 2 x output rows (active rows of a sparse output) x cout x cin/groups x kh x kw.
 */
export function convFlops(g: ConvGeometry): number {
  return 2 * g.outRows * g.cout * (g.cin / g.groups) * g.kh * g.kw;
}

/** What a plan takes from the device: its dispatch limit, and one tile size on a software adapter. */
export function devicePlanOptions(ctx: Context): DevicePlanOptions {
  return { maxWorkgroups: ctx.gpu.limits.maxComputeWorkgroupsPerDimension, uniformTiles: ctx.gpu.adapter.isFallbackAdapter };
}

/** The plan of `pass` for this device, its activations stored as `act`. */
export function planFor(ctx: Context, pass: ConvPass, g: ConvGeometry, cfg: ConvConfig, bias: boolean, act: DType = 'f32'): ConvPlan {
  return planConv(pass, g, cfg, { bias, act, ...devicePlanOptions(ctx) });
}

/**
 * y[outRows, cout] = conv `g` of x (weight w, OIHW) + bias, x and y stored as `act`. `cfg`: the
 * shape's tuned config unless given.
 */
export function forward(
  ctx: Context, g: ConvGeometry, act: DType, x: GPUBuffer, w: Tensor, bias: GPUBuffer | null, y: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'fwd', g),
): void {
  const plan = planFor(ctx, 'fwd', g, cfg, bias !== null, act);
  ctx.gpu.noting({ tag: 'conv.fwd', flops: convFlops(g) }, () => runConvPlan(ctx, g, plan, { a: x, b: w.buffer, bias, out: y }));
}

/**
 * dx[inRows, cin] = the input gradient of conv `g` for output gradient dy (+ bias: convT's
 * forward), dy and dx stored as `act`.
 */
export function inputGrad(
  ctx: Context, g: ConvGeometry, act: DType, dy: GPUBuffer, w: Tensor, bias: GPUBuffer | null, dx: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'dx', g),
): void {
  const plan = planFor(ctx, 'dx', g, cfg, bias !== null, act);
  ctx.gpu.noting({ tag: 'conv.dx', flops: convFlops(g) }, () => runConvPlan(ctx, g, plan, { a: dy, b: w.buffer, bias, out: dx }));
}

/**
 * dW of conv `g` (x and dy stored as `act`) as a new f32 tensor of `shape` (default OIHW
 * [cout, cin/groups, kh, kw]): a parameter gradient, f32 whatever the activations are.
 */
export function weightGrad(
  ctx: Context, g: ConvGeometry, act: DType, x: GPUBuffer, dy: GPUBuffer,
  cfg: ConvConfig = convConfig(ctx.gpu, 'dw', g),
  shape: readonly number[] = [g.cout, g.cin / g.groups, g.kh, g.kw],
): Tensor {
  const dw = ctx.empty(shape);
  const plan = planFor(ctx, 'dw', g, cfg, false, act);
  ctx.gpu.noting({ tag: 'conv.dw', flops: convFlops(g) }, () => runConvPlan(ctx, g, plan, { a: x, b: dy, out: dw.buffer }));
  return dw;
}
