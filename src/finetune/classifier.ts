/**
 * The fine-tuning classifier: an encoder from the model zoo, the global average of its last
 * stage, then a Linear head, under the key names the downstream libraries load:
 *
 * - ResNets (timm / torchvision): the encoder's keys (conv1, bn1, layer1..4) and `fc.weight`,
 *   `fc.bias`; fc has nn.Linear's default init, as torchvision and timm leave it.
 * - ConvNeXt (the official ConvNeXt): downsample_layers, stages, then `norm` (LayerNorm of the
 *   pooled vector, eps 1e-6) and `head` (trunc_normal std .02, bias 0), as its forward_features
 *   + head.
 *
 * The encoder is not a named child: its keys stay at the top level, as in those state dicts.
 */
import type { Context } from '../tensor/context.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { Module, type StateValue } from '../nn/module.ts';
import { LayerNorm, Linear } from '../nn/layers.ts';
import { pytorchDefault, truncNormal, zeros } from '../nn/init.ts';
import { globalAvgPool } from '../ops/global-pool.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { ConvNeXt } from '../models/convnext.ts';
import { ResNet } from '../models/resnet.ts';
import { modelSpec, type ConvNeXtConfig, type ModelSpec, type ResNetConfig } from '../models/zoo.ts';
import type { Encoder } from '../models/spark.ts';
import type { Rng } from '../util/rng.ts';

export interface ClassifierConfig {
  /** A model-zoo name (resnet18, convnext_tiny, ...). */
  model: string;
  classes: number;
  /** Side of the square input in pixels (a multiple of 32). */
  inputSize: number;
  /** Overrides the architecture (narrow test models); the name then only picks the family. */
  resnet?: ResNetConfig;
  convnext?: ConvNeXtConfig;
  /** Stochastic depth; the model's default when absent. */
  dropPathRate?: number;
  /** ResNets: zero the last BatchNorm of each residual branch (timm's default, true). */
  zeroInitLastBn?: boolean;
}

export class Classifier extends Module {
  readonly family: ModelSpec['family'];
  readonly encoder: Encoder;
  /** ConvNeXt only: the LayerNorm of the pooled features. */
  private norm: LayerNorm | null = null;
  private fc: Linear;

  constructor(ctx: Context, rng: Rng, readonly config: ClassifierConfig) {
    super(ctx);
    if (!Number.isInteger(config.classes) || config.classes < 2) throw new Error(`a classifier needs at least 2 classes, got ${config.classes}`);
    const spec = modelSpec(config.model);
    this.family = spec.family;
    const dp = config.dropPathRate === undefined ? {} : { dropPathRate: config.dropPathRate };
    if (spec.family === 'resnet') {
      const zi = config.zeroInitLastBn === undefined ? {} : { zeroInitLastBn: config.zeroInitLastBn };
      this.encoder = new ResNet(ctx, rng, config.resnet ?? spec.resnet!, { ...dp, ...zi });
    } else {
      this.encoder = new ConvNeXt(ctx, rng, config.convnext ?? spec.convnext!, dp);
    }
    const dim = this.featureDim;
    if (spec.family === 'resnet') {
      this.fc = this.child('fc', new Linear(ctx, rng, dim, config.classes, pytorchDefault(dim), pytorchDefault(dim)));
    } else {
      this.norm = this.child('norm', new LayerNorm(ctx, rng, dim, 1e-6));
      this.fc = this.child('head', new Linear(ctx, rng, dim, config.classes, truncNormal(0.02), zeros));
    }
  }

  get featureDim(): number {
    return this.encoder.featureChannels[this.encoder.featureChannels.length - 1]!;
  }

  /** The head's key prefixes (`fc.` / `norm.`, `head.`): what an encoder-only file lacks. */
  get headPrefixes(): string[] {
    return this.family === 'resnet' ? ['fc.'] : ['norm.', 'head.'];
  }

  /** x: the dense image map [B*H*W, 3]. Returns the logits [B, classes]. */
  forward(x: Tensor): Tensor {
    // The encoder runs in the context's precision; the pooled features return to f32, so the
    // head, the logits and the loss are f32 (as SparK's f16 step keeps its loss f32).
    let pooled = ew.fromActivation(globalAvgPool(this.encoder.forward(ew.toActivation(x)).at(-1)!));
    if (this.norm) pooled = this.norm.forward(pooled);
    return this.fc.forward(pooled);
  }

  override namedParameters(prefix = ''): [string, Parameter][] {
    return [...this.encoder.namedParameters(prefix), ...super.namedParameters(prefix)];
  }

  override stateDict(prefix = ''): Map<string, StateValue> {
    return new Map([...this.encoder.stateDict(prefix), ...super.stateDict(prefix)]);
  }

  override train(on = true): this {
    this.encoder.train(on);
    return super.train(on);
  }
}
