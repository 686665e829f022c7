/**
 * Plants a non-finite gradient in a trainer's steps: the optimizer's `step` is wrapped so that,
 * on chosen steps (0-based), just before the update, a [size] tensor (`value` at element 0 on
 * those steps, zeros otherwise) is added to the smallest parameter's gradient on the GPU. The
 * values are drawn when the write runs, so the hook works the same in recorded-and-replayed
 * steps (the trainer's default) as in eager ones: x + 0 is exactly x, x + NaN is NaN,
 * x + Inf is Inf (as an overflow would leave it).
 */
import type { Trainer } from '../../src/train/trainer.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';

export function poison(trainer: Trainer, poisoned: (step: number) => boolean, value = NaN): void {
  const opt = trainer.optimizer;
  const ctx = trainer.ctx;
  const step = opt.step.bind(opt);
  const target = [...trainer.model.parameters()].sort((a, b) => a.size - b.size)[0]!;
  let n = 0;
  opt.step = (lr, wd) => {
    ctx.noGrad(() =>
      ctx.tidy(() => {
        const delta = ctx.fromArray(() => {
          const v = new Float32Array(target.size);
          if (poisoned(n++)) v[0] = value;
          return v;
        }, target.shape);
        ew.accumulate(target.grad!, delta);
      }),
    );
    step(lr, wd);
  };
}
