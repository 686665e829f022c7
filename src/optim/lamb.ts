/**
 * LAMB with timm 0.5.4 semantics (what SparK uses) and AdamW, entirely on the GPU: the global
 * gradient norm, clipping, the skip decision for non-finite gradients, bias corrections and
 * trust ratios are computed and consumed on the GPU (shaders/lamb.wgsl). The CPU only reads
 * the status back asynchronously for metrics.
 *
 * Parameter groups as the official code builds them: no weight decay (and so no trust ratio)
 * for 1-D parameters, biases, mask tokens and layer-scale gammas.
 */
import type { Context } from '../tensor/context.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { sumsOfSquares } from '../ops/segmented.ts';
import type { LossScaler } from './loss-scale.ts';

export type OptimizerKind = 'lamb' | 'adamw';

export interface OptimizerOptions {
  kind?: OptimizerKind;
  beta1?: number;
  /** 0.95 for ResNets, 0.999 for ConvNeXt in SparK. */
  beta2: number;
  eps?: number;
  /** Global gradient-norm clip (LAMB: inside the optimizer, 5.0 in SparK). 0 disables it. */
  maxGradNorm?: number;
  /**
   * Dynamic loss scaling (loss-scale.ts): the gradients arrive multiplied by its scale; the
   * step divides them by it, and updates the scale (backoff and skip on non-finite gradients).
   */
  scaler?: LossScaler;
}

/** The official no-decay rule (SparK's `get_param_groups`). */
export function usesWeightDecay(name: string, shape: readonly number[]): boolean {
  if (shape.length === 1 || name.endsWith('.bias')) return false;
  return !['cls_token', 'pos_embed', 'mask_token', 'gamma'].some((k) => name.includes(k));
}

interface Slot {
  name: string;
  param: Parameter;
  m: Tensor;
  v: Tensor;
  decay: boolean;
}

export interface StepStatus {
  /** Global L2 norm of the gradients before clipping (unscaled). */
  gradNorm: number;
  /** True if the gradients were not finite and the step was not applied. */
  skipped: boolean;
  /** Steps applied so far. */
  step: number;
}

export class Lamb {
  readonly kind: OptimizerKind;
  private slots: Slot[];
  /** [clip divisor, skip flag, grad norm, applied steps] on the GPU. */
  readonly state: Tensor;
  /** [lr, weight decay] of the step being recorded or replayed (see `schedule`). */
  private readonly hyper: Tensor;
  private lr = 0;
  private weightDecay = 0;
  private beta1: number;
  private beta2: number;
  private eps: number;
  private maxGradNorm: number;
  readonly scaler: LossScaler | null;

  constructor(private ctx: Context, named: readonly [string, Parameter][], options: OptimizerOptions) {
    this.kind = options.kind ?? 'lamb';
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2;
    this.eps = options.eps ?? 1e-6;
    this.maxGradNorm = options.maxGradNorm ?? 5;
    this.scaler = options.scaler ?? null;
    this.slots = named.map(([name, param]) => ({
      name,
      param,
      m: ctx.persistent(param.shape),
      v: ctx.persistent(param.shape),
      decay: usesWeightDecay(name, param.shape),
    }));
    this.state = ctx.persistent([4]);
    this.hyper = ctx.persistent([2]);
  }

  /**
   * Sets the lr and weight decay the next replay of a recorded `step` uses (its write of
   * them is refilled from here). Weight decay switching to or from 0 changes which parameters
   * take the trust ratio, so such a step must be recorded again.
   */
  schedule(lr: number, weightDecay: number): void {
    this.lr = lr;
    this.weightDecay = weightDecay;
  }

  /** Optimizer state tensors by name (for checkpoints): `<param>.exp_avg`, `<param>.exp_avg_sq`, `step_state`. */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const s of this.slots) {
      out.set(`${s.name}.exp_avg`, s.m);
      out.set(`${s.name}.exp_avg_sq`, s.v);
    }
    out.set('step_state', this.state);
    return out;
  }

  /** Records one update with this iteration's lr and weight decay. Parameters without a gradient are left alone. */
  step(lr: number, weightDecay: number): void {
    const ctx = this.ctx;
    const gpu = ctx.gpu;
    ctx.noGrad(() =>
      ctx.tidy(() => {
        const live = this.slots.filter((s) => s.param.grad);
        if (live.length === 0) return;
        this.schedule(lr, weightDecay);
        gpu.write(this.hyper.buffer, () => new Float32Array([this.lr, this.weightDecay]));
        const gradSq = ew.sum(sumsOfSquares(live.map((s) => s.param.grad!)));
        const base = (p: { n: number; index: number; adapt: boolean; decay: boolean }) =>
          ({
            n: p.n,
            norm_index: p.index,
            adapt: p.adapt ? 1 : 0,
            decay: p.decay ? 1 : 0,
            beta1: this.beta1,
            beta2: this.beta2,
            eps: this.eps,
            max_norm: this.maxGradNorm,
            one_minus_beta1: 1 - this.beta1,
            one_minus_beta2: 1 - this.beta2,
            ln_beta1: Math.log(this.beta1),
            ln_beta2: Math.log(this.beta2),
          });
        const scaler = this.scaler;
        if (scaler) {
          const o = scaler.options;
          gpu.dispatch(
            gpu.pipeline('grad-state', 'scaled_state'),
            { state: this.state.buffer, grad_sumsq: gradSq.buffer, scale: scaler.scale.buffer, clean_steps: scaler.cleanSteps.buffer },
            { max_norm: this.maxGradNorm, growth_factor: o.growthFactor, backoff_factor: o.backoffFactor, growth_interval: o.growthInterval },
            [1],
          );
        } else {
          gpu.dispatch(
            gpu.pipeline('grad-state', 'global_state'),
            { state: this.state.buffer, grad_sumsq: gradSq.buffer },
            { max_norm: this.maxGradNorm, growth_factor: 0, backoff_factor: 0, growth_interval: 0 },
            [1],
          );
        }
        const updates = live.map((s) => {
          const u = ctx.empty(s.param.shape);
          gpu.dispatch(
            gpu.pipeline('lamb', 'moments'),
            { p: s.param.buffer, g: s.param.grad!.buffer, m: s.m.buffer, v: s.v.buffer, u: u.buffer, state: this.state.buffer, hyper: this.hyper.buffer },
            base({ n: s.param.size, index: 0, adapt: false, decay: s.decay }),
            gpu.grid(Math.ceil(s.param.size / 256)),
          );
          return u;
        });
        // The trust ratio applies to LAMB's decayed parameters (timm: weight_decay != 0).
        const adapt = live.map((s) => this.kind === 'lamb' && s.decay && weightDecay !== 0);
        const normed: Tensor[] = [];
        const index = live.map((s, k) => {
          if (!adapt[k]) return 0;
          normed.push(s.param, updates[k]!);
          return normed.length / 2 - 1;
        });
        const norms = normed.length ? sumsOfSquares(normed) : null;
        live.forEach((s, k) => {
          // norms is read only where adapt is 1: with no trust ratio anywhere there are none.
          gpu.dispatch(
            gpu.pipeline('lamb', 'apply'),
            { p: s.param.buffer, u: updates[k]!.buffer, state: this.state.buffer, hyper: this.hyper.buffer, norms: norms?.buffer ?? null },
            base({ n: s.param.size, index: index[k]!, adapt: adapt[k]!, decay: false }),
            gpu.grid(Math.ceil(s.param.size / 256)),
          );
        });
      }),
    );
  }

  /** Reads the last step's status (asynchronously; the copy is recorded now). */
  async status(): Promise<StepStatus> {
    const s = await this.state.read();
    return { gradNorm: s[2]!, skipped: s[1] !== 0, step: s[3]! };
  }
}
