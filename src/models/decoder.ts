/**
 * SparK's LightDecoder: five UNet blocks, each ConvTranspose 4x4/2 -> conv3x3 -> BN -> ReLU6
 * -> conv3x3 -> BN (no activation at the end), then a 1x1 projection to RGB. Channels halve
 * from `width` at every block ([768, 384, 192, 96, 48, 24] by default). Dense throughout:
 * its BatchNorms cover every position, as in the official code.
 */
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { BatchNorm2d, Conv2d, ConvTranspose2d } from '../nn/layers.ts';
import { kaimingNormalFanOut, truncNormal, zeros } from '../nn/init.ts';
import type { Rng } from '../util/rng.ts';

const CONV_INIT = { init: truncNormal(0.02), biasInit: zeros };

class ConvBnStack extends ModuleList<Module> {
  forward(x: Tensor): Tensor {
    const [c0, bn1, c3, bn4] = this.items as [Conv2d, BatchNorm2d, Conv2d, BatchNorm2d];
    const y = ew.relu6(bn1.forward(c0.forward(x)));
    return bn4.forward(c3.forward(y));
  }
}

class UNetBlock extends Module {
  private upSample: ConvTranspose2d;
  private conv: ConvBnStack;

  constructor(ctx: Context, rng: Rng, cin: number, cout: number) {
    super(ctx);
    this.upSample = this.child('up_sample', new ConvTranspose2d(ctx, rng, cin, cin, 4, 2, 1, kaimingNormalFanOut));
    // nn.Sequential(conv, bn, ReLU6, conv, bn): indices 0, 1, 3, 4 hold parameters.
    this.conv = this.child(
      'conv',
      new ConvBnStack(ctx, [
        new Conv2d(ctx, rng, cin, cin, 3, { padding: 1, bias: false, ...CONV_INIT }),
        new BatchNorm2d(ctx, rng, cin),
        null,
        new Conv2d(ctx, rng, cin, cout, 3, { padding: 1, bias: false, ...CONV_INIT }),
        new BatchNorm2d(ctx, rng, cout),
      ]),
    );
  }

  forward(x: Tensor): Tensor {
    return this.conv.forward(this.upSample.forward(x));
  }
}

export class LightDecoder extends Module {
  readonly channels: number[];
  private blocks: UNetBlock[];
  private proj: Conv2d;

  constructor(ctx: Context, rng: Rng, readonly width = 768, upSampleRatio = 32) {
    super(ctx);
    const n = Math.round(Math.log2(upSampleRatio));
    this.channels = Array.from({ length: n + 1 }, (_, i) => Math.floor(width / 2 ** i));
    if (this.channels[n]! < 1) throw new Error(`decoder width ${width} is too small for ${n} halvings`);
    this.blocks = Array.from({ length: n }, (_, i) => new UNetBlock(ctx, rng, this.channels[i]!, this.channels[i + 1]!));
    this.child('dec', new ModuleList(ctx, this.blocks));
    this.proj = this.child('proj', new Conv2d(ctx, rng, this.channels[n]!, 3, 1, CONV_INIT));
  }

  /** `toDec[i]`: densified features, coarsest first; added before block i. Each block's output is appended to `blockOutputs`. */
  forward(toDec: readonly Tensor[], blockOutputs: Tensor[] = []): Tensor {
    let x: Tensor | null = null;
    this.blocks.forEach((block, i) => {
      const skip = toDec[i];
      x = skip ? (x ? ew.add(x, skip) : skip) : x;
      if (!x) throw new Error('LightDecoder: no input');
      x = block.forward(x);
      blockOutputs.push(x);
    });
    return this.proj.forward(x!);
  }
}
