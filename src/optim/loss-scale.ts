/**
 * Dynamic loss scaling with the semantics of PyTorch's `torch.amp.GradScaler`: the loss's
 * backward seed is the scale, so small f16 gradients stay above f16's underflow; the optimizer
 * divides the gradients by it again, folded into its clip division (shaders/grad-state.wgsl
 * `scaled_state`, in place of its `global_state`). A step whose gradients are
 * not finite is skipped and the scale is multiplied by `backoffFactor`; after
 * `growthInterval` clean steps in a row it is multiplied by `growthFactor`.
 *
 * The state (scale, clean steps) lives on the GPU and is updated there by the optimizer step,
 * so a recorded step replays with it and steps queued ahead of the host's readback use the
 * scale the previous step left, exactly as a synchronous loop would. The trainer saves it in
 * the checkpoint's run metadata (`lossScale`).
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';

export interface LossScaleOptions {
  /** First scale (PyTorch: 2^16). */
  initScale?: number;
  /** Multiplies the scale after `growthInterval` clean steps (PyTorch: 2). */
  growthFactor?: number;
  /** Multiplies the scale on a step with non-finite gradients (PyTorch: 0.5). */
  backoffFactor?: number;
  /** Clean steps in a row before the scale grows (PyTorch: 2000). */
  growthInterval?: number;
}

/** The scaler's state as checkpoints store it. */
export interface LossScaleState {
  scale: number;
  /** Clean steps since the last overflow or growth. */
  cleanSteps: number;
}

export const GRAD_SCALER_DEFAULTS: Required<LossScaleOptions> = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 };

/** Checks scaler options the way GradScaler does, naming the field that is wrong. */
export function lossScaleOptions(options: LossScaleOptions = {}): Required<LossScaleOptions> {
  const o = { ...GRAD_SCALER_DEFAULTS, ...options };
  const positive = (v: number) => Number.isFinite(v) && v > 0;
  if (!positive(o.initScale)) throw new Error(`loss scale: initScale must be a finite number above 0, got ${o.initScale}`);
  if (!(Number.isFinite(o.growthFactor) && o.growthFactor > 1)) throw new Error(`loss scale: growthFactor must be above 1, got ${o.growthFactor}`);
  if (!(positive(o.backoffFactor) && o.backoffFactor < 1)) throw new Error(`loss scale: backoffFactor must be in (0, 1), got ${o.backoffFactor}`);
  if (!(Number.isInteger(o.growthInterval) && o.growthInterval >= 1)) throw new Error(`loss scale: growthInterval must be a whole number of at least 1, got ${o.growthInterval}`);
  return o;
}

/**
 * The host-side reference of one update (torch._amp_update_scale_), for tests and docs: what
 * the GPU computes after a step with (`foundInf`) or without non-finite gradients.
 */
export function nextLossScale(s: LossScaleState, foundInf: boolean, options: LossScaleOptions = {}): LossScaleState {
  const o = lossScaleOptions(options);
  if (foundInf) return { scale: Math.fround(s.scale * o.backoffFactor), cleanSteps: 0 };
  const clean = s.cleanSteps + 1;
  if (clean < o.growthInterval) return { scale: s.scale, cleanSteps: clean };
  const grown = Math.fround(s.scale * o.growthFactor);
  return { scale: Number.isFinite(grown) ? grown : s.scale, cleanSteps: 0 };
}

export class LossScaler {
  readonly options: Required<LossScaleOptions>;
  /** [scale]: the backward seed (a 1-element tensor, like the loss). */
  readonly scale: Tensor;
  /** [clean steps]. */
  readonly cleanSteps: Tensor;

  constructor(
    private ctx: Context,
    options: LossScaleOptions = {},
  ) {
    this.options = lossScaleOptions(options);
    this.scale = ctx.persistent([1]);
    this.cleanSteps = ctx.persistent([1]);
    this.load({ scale: this.options.initScale, cleanSteps: 0 });
  }

  /** Sets the state (a resumed run's). */
  load(s: LossScaleState): void {
    if (!(Number.isFinite(s.scale) && s.scale > 0) || !(Number.isInteger(s.cleanSteps) && s.cleanSteps >= 0)) {
      throw new Error(`loss scale state must have a scale above 0 and a whole number of clean steps, got ${JSON.stringify(s)}`);
    }
    this.ctx.gpu.write(this.scale.buffer, new Float32Array([s.scale]));
    this.ctx.gpu.write(this.cleanSteps.buffer, new Float32Array([s.cleanSteps]));
  }

  /** Reads the state after the queued steps (asynchronously). */
  async read(): Promise<LossScaleState> {
    const [scale, clean] = await Promise.all([this.scale.read(), this.cleanSteps.read()]);
    return { scale: scale[0]!, cleanSteps: clean[0]! };
  }
}
