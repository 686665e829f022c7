/**
 * ResNets with timm 0.5.4's structure and parameter names (conv1, bn1, layerN.i.{conv1,bn1,
 * ...}, downsample.{0,1}); ResNet-50 and up are v1.5 (stride in the 3x3). The forward returns
 * the four stage outputs (strides 4, 8, 16, 32) that SparK densifies and decodes.
 * Run on a sparse input, every layer is submanifold: no row exists at a masked site, which is
 * exactly the official "dense op, then zero the masked sites" simulation.
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { maxPool2d } from '../ops/pool.ts';
import { Module, ModuleList, Sequential } from '../nn/module.ts';
import { BatchNorm2d, Conv2d, DropPath } from '../nn/layers.ts';
import { kaimingNormalFanOut } from '../nn/init.ts';
import type { Rng } from '../util/rng.ts';
import type { ResNetConfig } from './zoo.ts';

const conv = (ctx: Context, rng: Rng, cin: number, cout: number, k: number, stride = 1) =>
  new Conv2d(ctx, rng, cin, cout, k, { stride, padding: k >> 1, bias: false, init: kaimingNormalFanOut });

class Downsample extends ModuleList<Conv2d | BatchNorm2d> {
  constructor(ctx: Context, rng: Rng, cin: number, cout: number, stride: number) {
    super(ctx, [conv(ctx, rng, cin, cout, 1, stride), new BatchNorm2d(ctx, rng, cout)]);
  }

  forward(x: Tensor): Tensor {
    const [c, bn] = this.items as [Conv2d, BatchNorm2d];
    return bn.forward(c.forward(x));
  }
}

abstract class Block extends Module {
  abstract forward(x: Tensor): Tensor;
}

class BasicBlock extends Block {
  static readonly expansion = 1;
  private conv1: Conv2d;
  private bn1: BatchNorm2d;
  private conv2: Conv2d;
  private bn2: BatchNorm2d;
  private downsample: Downsample | null;

  constructor(ctx: Context, rng: Rng, cin: number, planes: number, stride: number, private drop: DropPath, zeroInitLast: boolean) {
    super(ctx);
    this.conv1 = this.child('conv1', conv(ctx, rng, cin, planes, 3, stride));
    this.bn1 = this.child('bn1', new BatchNorm2d(ctx, rng, planes));
    this.conv2 = this.child('conv2', conv(ctx, rng, planes, planes, 3));
    this.bn2 = this.child('bn2', new BatchNorm2d(ctx, rng, planes));
    if (zeroInitLast) ctx.gpu.zero(this.bn2.weight.buffer, planes * 4);
    const needs = stride !== 1 || cin !== planes;
    this.downsample = needs ? this.child('downsample', new Downsample(ctx, rng, cin, planes, stride)) : null;
  }

  forward(x: Tensor): Tensor {
    let y = ew.relu(this.bn1.forward(this.conv1.forward(x)));
    y = this.bn2.forward(this.conv2.forward(y));
    y = this.drop.forward(y, this.training);
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    return ew.relu(ew.add(y, shortcut));
  }
}

class Bottleneck extends Block {
  static readonly expansion = 4;
  private conv1: Conv2d;
  private bn1: BatchNorm2d;
  private conv2: Conv2d;
  private bn2: BatchNorm2d;
  private conv3: Conv2d;
  private bn3: BatchNorm2d;
  private downsample: Downsample | null;

  constructor(ctx: Context, rng: Rng, cin: number, planes: number, stride: number, private drop: DropPath, zeroInitLast: boolean) {
    super(ctx);
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.child('conv1', conv(ctx, rng, cin, planes, 1));
    this.bn1 = this.child('bn1', new BatchNorm2d(ctx, rng, planes));
    this.conv2 = this.child('conv2', conv(ctx, rng, planes, planes, 3, stride));
    this.bn2 = this.child('bn2', new BatchNorm2d(ctx, rng, planes));
    this.conv3 = this.child('conv3', conv(ctx, rng, planes, out, 1));
    this.bn3 = this.child('bn3', new BatchNorm2d(ctx, rng, out));
    if (zeroInitLast) ctx.gpu.zero(this.bn3.weight.buffer, out * 4);
    const needs = stride !== 1 || cin !== out;
    this.downsample = needs ? this.child('downsample', new Downsample(ctx, rng, cin, out, stride)) : null;
  }

  forward(x: Tensor): Tensor {
    let y = ew.relu(this.bn1.forward(this.conv1.forward(x)));
    y = ew.relu(this.bn2.forward(this.conv2.forward(y)));
    y = this.bn3.forward(this.conv3.forward(y));
    y = this.drop.forward(y, this.training);
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    return ew.relu(ew.add(y, shortcut));
  }
}

/** A stage: its blocks in order. */
class Stage extends Sequential<Block> {}

export class ResNet extends Module {
  /** Channels of the four features (e.g. 256, 512, 1024, 2048 for ResNet-50). */
  readonly featureChannels: number[];
  readonly downsampleRatio = 32;
  private conv1: Conv2d;
  private bn1: BatchNorm2d;
  private stages: Stage[];

  constructor(ctx: Context, rng: Rng, config: ResNetConfig, options: { zeroInitLastBn?: boolean; dropPathRate?: number } = {}) {
    super(ctx);
    const base = config.stemWidth ?? 64;
    const planesOf = config.planes ?? [64, 128, 256, 512];
    const expansion = config.block === 'basic' ? 1 : 4;
    const dpr = options.dropPathRate ?? config.dropPathRate ?? 0;
    const zeroLast = options.zeroInitLastBn ?? true;
    this.conv1 = this.child('conv1', new Conv2d(ctx, rng, 3, base, 7, { stride: 2, padding: 3, bias: false, init: kaimingNormalFanOut }));
    this.bn1 = this.child('bn1', new BatchNorm2d(ctx, rng, base));
    const total = config.layers.reduce((a, b) => a + b, 0);
    let blockIndex = 0;
    let cin = base;
    this.stages = [];
    this.featureChannels = [];
    config.layers.forEach((count, s) => {
      const planes = planesOf[s]!;
      const blocks: Block[] = [];
      for (let i = 0; i < count; i++) {
        // timm: linear stochastic-depth decay over all blocks of the network.
        const rate = total > 1 ? (dpr * blockIndex) / (total - 1) : 0;
        const drop = new DropPath(rate, rng);
        const stride = i === 0 && s > 0 ? 2 : 1;
        const block =
          config.block === 'basic'
            ? new BasicBlock(ctx, rng, cin, planes, stride, drop, zeroLast)
            : new Bottleneck(ctx, rng, cin, planes, stride, drop, zeroLast);
        blocks.push(block);
        cin = planes * expansion;
        blockIndex++;
      }
      this.stages.push(this.child(`layer${s + 1}`, new Stage(ctx, blocks)));
      this.featureChannels.push(cin);
    });
  }

  /** x: the (masked) image as feature-map rows [rows, 3]. Returns the four stage outputs. */
  forward(x: Tensor): Tensor[] {
    let y = ew.relu(this.bn1.forward(this.conv1.forward(x)));
    y = maxPool2d(y, { kernel: 3, stride: 2, padding: 1 });
    const features: Tensor[] = [];
    for (const stage of this.stages) {
      y = stage.forward(y);
      features.push(y);
    }
    return features;
  }
}
