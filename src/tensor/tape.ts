/**
 * The autograd tape. Ops record (inputs, output, backward rule) as they run; `backward` walks
 * the records in reverse and hands each rule the gradient of its output.
 *
 * Gradient rule, as in llm.c: parameter gradients accumulate (`+=`, across uses and across
 * calls until zeroed), activation gradients are fresh tensors that are summed when a tensor
 * feeds several ops.
 */
import type { OpName } from './op-names.ts';
import { Parameter, type Tensor } from './tensor.ts';

/** A backward rule returns one gradient per input, in order (null where none flows). */
export type Grads<I extends readonly unknown[]> = { [K in keyof I]: Tensor | null };
export type BackwardRule<I extends readonly (Tensor | null)[]> = (gy: Tensor) => Grads<I>;

interface Entry {
  name: OpName;
  inputs: readonly (Tensor | null)[];
  output: Tensor;
  backward: (gy: Tensor) => readonly (Tensor | null)[];
}

export interface GradientOps {
  /** a + b as a new tensor (for summing activation gradients). */
  add(a: Tensor, b: Tensor): Tensor;
  /** dst += src in place (parameter gradients). */
  accumulate(dst: Tensor, src: Tensor): void;
  /** A persistent copy of `src` (a parameter's first gradient). */
  persistentCopy(src: Tensor): Tensor;
  /** A tensor of ones shaped like `t` (the seed of backward). */
  onesLike(t: Tensor): Tensor;
}

export class Tape {
  private entries: Entry[] = [];

  get length(): number {
    return this.entries.length;
  }

  /** Records an op. The rule is required: an op without a backward rule does not compile. */
  record<I extends readonly (Tensor | null)[]>(
    name: OpName,
    inputs: I,
    output: Tensor,
    backward: BackwardRule<I>,
  ): void {
    this.entries.push({ name, inputs, output, backward: backward as Entry['backward'] });
  }

  /** Drops records made after `length` (used when a scope that made them ends). */
  truncate(length: number): void {
    this.entries.length = Math.min(this.entries.length, length);
  }

  /**
   * Propagates from `root` (seeded with `seed`, or ones) to every tensor that requires a
   * gradient. Parameters receive theirs in `param.grad`; the gradients of other leaf tensors
   * (inputs marked `requiresGrad`) are returned by tensor id. The tape is emptied.
   */
  backward(root: Tensor, seed: Tensor | null, ops: GradientOps): Map<number, Tensor> {
    const grads = new Map<number, Tensor>();
    grads.set(root.id, seed ?? ops.onesLike(root));
    const entries = this.entries;
    this.entries = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      const gy = grads.get(e.output.id);
      if (!gy) continue;
      grads.delete(e.output.id);
      const gin = e.backward(gy);
      if (gin.length !== e.inputs.length) {
        throw new Error(`${e.name}: backward returned ${gin.length} gradients for ${e.inputs.length} inputs`);
      }
      e.inputs.forEach((input, k) => {
        const g = gin[k];
        if (!input || !input.requiresGrad || !g) return;
        if (g.size !== input.size) {
          throw new Error(`${e.name}: gradient of input ${k} has shape [${g.shape}], input is [${input.shape}]`);
        }
        if (input instanceof Parameter) {
          if (input.grad) ops.accumulate(input.grad, g);
          else input.grad = ops.persistentCopy(g);
          return;
        }
        const prev = grads.get(input.id);
        grads.set(input.id, prev ? ops.add(prev, g) : g);
      });
    }
    return grads;
  }
}
