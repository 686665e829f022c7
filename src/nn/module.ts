/**
 * Modules: plain classes holding parameters, buffers and child modules under the names of the
 * PyTorch state dict, so `stateDict()` keys are the official checkpoint keys with no renaming.
 */
import type { Context } from '../tensor/context.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../util/rng.ts';
import type { Init } from './init.ts';

/** A state-dict entry: a GPU tensor, or a CPU integer (BatchNorm's num_batches_tracked, I64). */
export type StateValue = { kind: 'tensor'; tensor: Tensor } | { kind: 'int'; get(): number; set(v: number): void };

export abstract class Module {
  training = true;
  private children = new Map<string, Module>();
  private params = new Map<string, Parameter>();
  private buffers = new Map<string, StateValue>();

  constructor(readonly ctx: Context) {}

  protected child<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  protected param(name: string, shape: readonly number[], init: Init, rng: Rng): Parameter {
    const p = this.ctx.parameter(name, shape, init(rng, shape));
    this.params.set(name, p);
    return p;
  }

  /** A persistent non-trained tensor (running statistics). */
  protected buffer(name: string, shape: readonly number[], values: Float32Array): Tensor {
    const t = this.ctx.persistent(shape);
    this.ctx.gpu.write(t.buffer, values);
    this.buffers.set(name, { kind: 'tensor', tensor: t });
    return t;
  }

  protected intBuffer(name: string, get: () => number, set: (v: number) => void): void {
    this.buffers.set(name, { kind: 'int', get, set });
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Parameters and buffers under their state-dict keys, in registration order. */
  stateDict(prefix = ''): Map<string, StateValue> {
    const out = new Map<string, StateValue>();
    for (const [n, p] of this.params) out.set(prefix + n, { kind: 'tensor', tensor: p });
    for (const [n, b] of this.buffers) out.set(prefix + n, b);
    for (const [n, c] of this.children) for (const [k, v] of c.stateDict(`${prefix}${n}.`)) out.set(k, v);
    return out;
  }

  /** Training mode (batch statistics, drop path) or inference mode, recursively. */
  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }
}

/** A container whose children are named '0', '1', ... like nn.Sequential / nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];

  constructor(ctx: Context, items: (M | null)[]) {
    super(ctx);
    items.forEach((m, i) => {
      // null leaves a gap in the numbering (nn.Sequential's parameterless ReLU6 at index 2).
      if (m) this.items.push(this.child(String(i), m));
    });
  }
}

/** A ModuleList whose forward runs its modules in order, like nn.Sequential (a model's stages). */
export class Sequential<M extends Module & { forward(x: Tensor): Tensor }> extends ModuleList<M> {
  forward(x: Tensor): Tensor {
    for (const m of this.items) x = m.forward(x);
    return x;
  }
}
