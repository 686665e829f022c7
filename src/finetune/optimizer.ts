/**
 * AdamW with per-layer learning rates: one engine AdamW (src/optim/lamb.ts, kind 'adamw') per
 * distinct lr multiplier, each stepped with lr x its multiplier. Weight decay skips 1-D
 * parameters and biases (the optimizer's own rule). There is no gradient clipping (timm's
 * fine-tuning default), so the groups are independent and together are exactly one AdamW with
 * per-parameter learning rates; PyTorch's defaults beta (0.9, 0.999), eps 1e-8.
 */
import type { Context } from '../tensor/context.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { Lamb } from '../optim/lamb.ts';

export class LayerwiseAdamW {
  private groups: { scale: number; opt: Lamb }[] = [];

  constructor(ctx: Context, named: readonly [string, Parameter][], scaleOf: (name: string) => number) {
    const byScale = new Map<number, [string, Parameter][]>();
    for (const [name, p] of named) {
      const s = scaleOf(name);
      if (!(s > 0)) throw new Error(`lr multiplier of ${name} is ${s}: the layer decay must be positive`);
      let list = byScale.get(s);
      if (!list) byScale.set(s, (list = []));
      list.push([name, p]);
    }
    // Highest multiplier (the head) first, so the group order is the same in every run.
    for (const scale of [...byScale.keys()].sort((a, b) => b - a)) {
      this.groups.push({ scale, opt: new Lamb(ctx, byScale.get(scale)!, { kind: 'adamw', beta2: 0.999, eps: 1e-8, maxGradNorm: 0 }) });
    }
  }

  /** The multipliers, head first (for the run's description). */
  get scales(): number[] {
    return this.groups.map((g) => g.scale);
  }

  step(lr: number, weightDecay: number): void {
    for (const g of this.groups) g.opt.step(lr * g.scale, weightDecay);
  }

  /** Moments of every parameter (`<param>.exp_avg[_sq]`) and each group's `step_state.<k>`. */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.groups.forEach((g, k) => {
      for (const [name, t] of g.opt.stateTensors()) out.set(name === 'step_state' ? `step_state.${k}` : name, t);
    });
    return out;
  }

  /** True if any group skipped its last step (non-finite gradients). */
  async skipped(): Promise<boolean> {
    const s = await Promise.all(this.groups.map((g) => g.opt.status()));
    return s.some((x) => x.skipped);
  }
}
