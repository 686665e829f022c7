/**
 * The layers SparK's networks are built from. Each forwards to one op; sparse or dense is
 * decided by the input's layout, so the same modules serve pre-training and fine-tuning.
 */
import type { Context } from '../tensor/context.ts';
import type { SiteLayout } from '../tensor/layout.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { conv2d, convTranspose2d } from '../ops/conv2d.ts';
import { depthwiseConv2d } from '../ops/depthwise.ts';
import { linear } from '../ops/matmul.ts';
import { batchNorm, layerNorm } from '../ops/norm.ts';
import { dropPath } from '../ops/channel.ts';
import type { Rng } from '../util/rng.ts';
import { Module } from './module.ts';
import { ones, pytorchDefault, zeros, type Init } from './init.ts';

export interface ConvSpec {
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
  init?: Init;
  biasInit?: Init;
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;

  constructor(ctx: Context, rng: Rng, readonly cin: number, readonly cout: number, readonly kernel: number, spec: ConvSpec = {}) {
    super(ctx);
    this.stride = spec.stride ?? 1;
    this.padding = spec.padding ?? 0;
    this.groups = spec.groups ?? 1;
    const fanIn = (cin / this.groups) * kernel * kernel;
    this.weight = this.param('weight', [cout, cin / this.groups, kernel, kernel], spec.init ?? pytorchDefault(fanIn), rng);
    this.bias = spec.bias === false ? null : this.param('bias', [cout], spec.biasInit ?? pytorchDefault(fanIn), rng);
  }

  forward(x: Tensor, outLayout?: SiteLayout): Tensor {
    const depthwise = this.groups > 1 && this.groups === this.cin && this.cin === this.cout;
    if (depthwise) {
      return depthwiseConv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, ...(outLayout ? { outLayout } : {}) });
    }
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      groups: this.groups,
      ...(outLayout ? { outLayout } : {}),
    });
  }
}

export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(ctx: Context, rng: Rng, cin: number, cout: number, readonly kernel: number, readonly stride: number, readonly padding: number, init: Init) {
    super(ctx);
    this.weight = this.param('weight', [cin, cout, kernel, kernel], init, rng);
    this.bias = this.param('bias', [cout], zeros, rng);
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(ctx: Context, rng: Rng, cin: number, cout: number, init: Init = pytorchDefault(cin), biasInit: Init = pytorchDefault(cin)) {
    super(ctx);
    this.weight = this.param('weight', [cout, cin], init, rng);
    this.bias = this.param('bias', [cout], biasInit, rng);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** BatchNorm2d; on a sparse map its statistics cover the active sites only (SparK's SparseBatchNorm2d). */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  numBatchesTracked = 0;

  constructor(ctx: Context, rng: Rng, readonly channels: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super(ctx);
    this.weight = this.param('weight', [channels], ones, rng);
    this.bias = this.param('bias', [channels], zeros, rng);
    this.runningMean = this.buffer('running_mean', [channels], new Float32Array(channels));
    this.runningVar = this.buffer('running_var', [channels], new Float32Array(channels).fill(1));
    this.intBuffer('num_batches_tracked', () => this.numBatchesTracked, (v) => (this.numBatchesTracked = v));
  }

  forward(x: Tensor): Tensor {
    if (this.training) {
      this.ctx.gpu.hostEffect(() => void this.numBatchesTracked++);
    }
    return batchNorm(
      x,
      this.weight,
      this.bias,
      { runningMean: this.runningMean, runningVar: this.runningVar },
      { training: this.training, momentum: this.momentum, eps: this.eps },
    );
  }
}

/** LayerNorm over channels (ConvNeXt's channels_last and channels_first forms are the same on rows). */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(ctx: Context, rng: Rng, readonly channels: number, readonly eps = 1e-6) {
    super(ctx);
    this.weight = this.param('weight', [channels], ones, rng);
    this.bias = this.param('bias', [channels], zeros, rng);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Stochastic depth per sample (timm's DropPath); draws from the model's seeded Rng. */
export class DropPath {
  constructor(readonly prob: number, private rng: Rng) {}

  forward(x: Tensor, training: boolean): Tensor {
    if (!training || this.prob === 0) return x;
    const batch = x.layout!.batch;
    // Drawn when the write runs: once now, or on every replay of a recorded step, in the
    // order the step makes them, so replayed draws equal an eager step's.
    const draw = () => {
      const keep = new Uint8Array(batch);
      for (let b = 0; b < batch; b++) keep[b] = this.rng.next() >= this.prob ? 1 : 0;
      return keep;
    };
    return dropPath(x, draw, this.prob);
  }
}
