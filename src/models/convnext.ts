/**
 * ConvNeXt with the official structure and names: downsample_layers.{0..3} (stem: 4x4/4 conv +
 * LN; then LN + 2x2/2 conv), stages.i.j.{dwconv, norm, pwconv1, pwconv2, gamma}. Returns the
 * output of every stage (strides 4, 8, 16, 32). On a sparse input the LayerNorms cover the
 * active rows only and the block output at masked sites does not exist (SparK's `x *= active`).
 */
import type { Context } from '../tensor/context.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { channelScale } from '../ops/channel.ts';
import { Module, ModuleList, Sequential } from '../nn/module.ts';
import { Conv2d, DropPath, LayerNorm, Linear } from '../nn/layers.ts';
import { constant, truncNormal, zeros } from '../nn/init.ts';
import type { Rng } from '../util/rng.ts';
import type { ConvNeXtConfig } from './zoo.ts';

const INIT = truncNormal(0.02);

class Block extends Module {
  private dwconv: Conv2d;
  private norm: LayerNorm;
  private pwconv1: Linear;
  private pwconv2: Linear;
  private gamma: Parameter | null;

  constructor(ctx: Context, rng: Rng, dim: number, private drop: DropPath, layerScale: number) {
    super(ctx);
    this.dwconv = this.child('dwconv', new Conv2d(ctx, rng, dim, dim, 7, { padding: 3, groups: dim, init: INIT, biasInit: zeros }));
    this.norm = this.child('norm', new LayerNorm(ctx, rng, dim));
    this.pwconv1 = this.child('pwconv1', new Linear(ctx, rng, dim, 4 * dim, INIT, zeros));
    this.pwconv2 = this.child('pwconv2', new Linear(ctx, rng, 4 * dim, dim, INIT, zeros));
    this.gamma = layerScale > 0 ? this.param('gamma', [dim], constant(layerScale), rng) : null;
  }

  forward(x: Tensor): Tensor {
    let y = this.norm.forward(this.dwconv.forward(x));
    y = this.pwconv2.forward(ew.gelu(this.pwconv1.forward(y)));
    if (this.gamma) y = channelScale(y, this.gamma);
    return ew.add(x, this.drop.forward(y, this.training));
  }
}

class Stem extends ModuleList<Module> {
  forward(x: Tensor): Tensor {
    const [conv, norm] = this.items as [Conv2d, LayerNorm];
    return norm.forward(conv.forward(x));
  }
}

class Downsample extends ModuleList<Module> {
  forward(x: Tensor): Tensor {
    const [norm, conv] = this.items as [LayerNorm, Conv2d];
    return conv.forward(norm.forward(x));
  }
}

/** A stage: its blocks in order. */
class Stage extends Sequential<Block> {}

export class ConvNeXt extends Module {
  readonly featureChannels: number[];
  readonly downsampleRatio = 32;
  private downsamples: (Stem | Downsample)[];
  private stages: Stage[];

  constructor(ctx: Context, rng: Rng, config: ConvNeXtConfig, options: { dropPathRate?: number } = {}) {
    super(ctx);
    const { depths, dims } = config;
    const dpr = options.dropPathRate ?? config.dropPathRate ?? 0;
    const layerScale = config.layerScaleInit ?? 1e-6;
    const convInit = { init: INIT, biasInit: zeros };
    const downsamples: (Stem | Downsample)[] = [
      new Stem(ctx, [new Conv2d(ctx, rng, 3, dims[0], 4, { stride: 4, ...convInit }), new LayerNorm(ctx, rng, dims[0])]),
    ];
    for (let i = 1; i < 4; i++) {
      downsamples.push(
        new Downsample(ctx, [new LayerNorm(ctx, rng, dims[i - 1]!), new Conv2d(ctx, rng, dims[i - 1]!, dims[i]!, 2, { stride: 2, ...convInit })]),
      );
    }
    this.downsamples = downsamples;
    this.child('downsample_layers', new ModuleList(ctx, downsamples));
    const total = depths.reduce((a, b) => a + b, 0);
    let k = 0;
    this.stages = depths.map((depth, i) => {
      const blocks: Block[] = [];
      for (let j = 0; j < depth; j++) {
        // Official: torch.linspace(0, drop_path_rate, sum(depths)).
        const rate = total > 1 ? (dpr * k) / (total - 1) : 0;
        blocks.push(new Block(ctx, rng, dims[i]!, new DropPath(rate, rng), layerScale));
        k++;
      }
      return new Stage(ctx, blocks);
    });
    this.child('stages', new ModuleList(ctx, this.stages));
    this.featureChannels = [...dims];
  }

  forward(x: Tensor): Tensor[] {
    const features: Tensor[] = [];
    for (let i = 0; i < 4; i++) {
      x = this.stages[i]!.forward(this.downsamples[i]!.forward(x));
      features.push(x);
    }
    return features;
  }
}
