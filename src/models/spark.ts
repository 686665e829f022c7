/**
 * SparK: mask -> sparse encoder (4 scales) -> densify (norm, mask token, projection) ->
 * LightDecoder -> masked patch loss. Module names are the official state-dict keys
 * (sparse_encoder.sp_cnn.*, densify_norms.i.*, densify_projs.i.*, mask_tokens.i,
 * dense_decoder.*), so checkpoints move to and from the official code without renaming.
 */
import type { Context } from '../tensor/context.ts';
import { PatchMask } from '../tensor/layout.ts';
import type { Parameter, Tensor } from '../tensor/tensor.ts';
import { gatherSites, maskFill, scatterToDense } from '../ops/sparse.ts';
import { maskedPatchLoss, reconstructionImages } from '../ops/loss.ts';
import { elementwise as ew } from '../ops/elementwise.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { BatchNorm2d, Conv2d, LayerNorm } from '../nn/layers.ts';
import { truncNormal } from '../nn/init.ts';
import { roundHalfEven, type Rng } from '../util/rng.ts';
import { LightDecoder } from './decoder.ts';

export interface Encoder extends Module {
  readonly featureChannels: number[];
  readonly downsampleRatio: number;
  forward(x: Tensor): Tensor[];
}

/** Visible patches per image on an fmap x fmap grid: round(h*w*(1-ratio)) with Python's round, as the official code. */
export function visiblePatches(fmap: number, maskRatio: number): number {
  return roundHalfEven(fmap * fmap * (1 - maskRatio));
}

export type DensifyNorm = 'bn' | 'ln' | 'identity';

/**
 * How masked patches reach the encoder. 'sparse' (SparK): masked sites have no rows, every
 * layer is submanifold and BatchNorm sees the visible sites only. 'zero-out' (the paper's
 * Table 5 ablation): the encoder runs as a dense conv net on the image with masked patches set
 * to zero, so convolutions smear across the mask border and BatchNorm statistics include the
 * masked sites ("mask pattern vanishing", distribution shift).
 */
export type Masking = 'sparse' | 'zero-out';

export interface SparKOptions {
  inputSize: number;
  maskRatio?: number;
  decoderWidth?: number;
  densifyNorm: DensifyNorm;
  /** 'sparse' by default; 'zero-out' for the ablation. */
  masking?: Masking;
  /** true by default: all four scales feed the decoder. false: only the last stage (single-scale ablation). */
  hierarchical?: boolean;
}

class EncoderHolder extends Module {
  constructor(ctx: Context, readonly spCnn: Encoder) {
    super(ctx);
    this.child('sp_cnn', spCnn);
  }
}

class MaskTokens extends Module {
  readonly tokens: Parameter[];

  constructor(ctx: Context, rng: Rng, widths: number[]) {
    super(ctx);
    // trunc_normal_(std=.02, a=-.02, b=.02): truncated at one standard deviation.
    this.tokens = widths.map((w, i) => this.param(String(i), [1, w, 1, 1], truncNormal(0.02, -0.02, 0.02), rng));
  }
}

export interface SparKOutput {
  loss: Tensor;
  /** Decoder output, dense [B*H*W, 3] rows in normalized-target space. */
  rec: Tensor;
  /** Sparse encoder features, strides 4, 8, 16, 32. */
  features: Tensor[];
  /** Densified maps fed to the decoder, coarsest first. */
  densified: Tensor[];
  /** Outputs of the densify norms (before the mask token), coarsest first. */
  normed: Tensor[];
  /** Output of each decoder UNet block (the last is what the projection sees). */
  decoded: Tensor[];
}

export class SparK extends Module {
  readonly encoder: Encoder;
  readonly decoder: LightDecoder;
  readonly maskRatio: number;
  readonly fmap: number;
  /** Visible patches per image: round(h*w*(1-ratio)), the official count. */
  readonly keep: number;
  readonly masking: Masking;
  readonly hierarchical: boolean;
  private norms: (BatchNorm2d | LayerNorm | null)[];
  private projs: (Conv2d | null)[];
  private tokens: MaskTokens;

  constructor(ctx: Context, rng: Rng, encoder: Encoder, readonly options: SparKOptions) {
    super(ctx);
    const { inputSize, densifyNorm } = options;
    const ratio = encoder.downsampleRatio;
    if (inputSize % ratio !== 0) throw new Error(`input size ${inputSize} is not a multiple of ${ratio}`);
    this.maskRatio = options.maskRatio ?? 0.6;
    this.fmap = inputSize / ratio;
    this.keep = visiblePatches(this.fmap, this.maskRatio);
    this.masking = options.masking ?? 'sparse';
    this.hierarchical = options.hierarchical ?? true;
    this.encoder = this.child('sparse_encoder', new EncoderHolder(ctx, encoder)).spCnn;
    const width = options.decoderWidth ?? 768;
    const eWidths = [...encoder.featureChannels].reverse();
    this.norms = [];
    this.projs = [];
    let dWidth = width;
    eWidths.forEach((e, i) => {
      // Single-scale decoding builds no densify layers for the finer scales (nothing feeds them).
      if (!this.hierarchical && i > 0) {
        this.norms.push(null);
        this.projs.push(null);
        dWidth = Math.floor(dWidth / 2);
        return;
      }
      this.norms.push(densifyNorm === 'bn' ? new BatchNorm2d(ctx, rng, e) : densifyNorm === 'ln' ? new LayerNorm(ctx, rng, e) : null);
      const k = i === 0 ? 1 : 3;
      this.projs.push(i === 0 && e === dWidth ? null : new Conv2d(ctx, rng, e, dWidth, k, { padding: k >> 1 }));
      dWidth = Math.floor(dWidth / 2);
    });
    this.tokens = new MaskTokens(ctx, rng, eWidths);
    this.child('densify_norms', new ModuleList(ctx, this.norms));
    this.child('densify_projs', new ModuleList(ctx, this.projs));
    this.child('mask_tokens', this.tokens);
    this.decoder = this.child('dense_decoder', new LightDecoder(ctx, rng, width, ratio));
  }

  /** A mask per image with exactly `keep` visible patches (the model's count by default), drawn from `rng`. */
  randomMask(batch: number, rng: Rng, keep = this.keep): PatchMask {
    const n = this.fmap * this.fmap;
    const visible = new Uint8Array(batch * n);
    for (let b = 0; b < batch; b++) {
      const order = rng.permutation(n);
      for (let i = 0; i < keep; i++) visible[b * n + order[i]!] = 1;
    }
    return new PatchMask(batch, this.fmap, this.fmap, visible);
  }

  /** image: ImageNet-normalized dense rows [B*H*W, 3]. */
  forward(image: Tensor, mask: PatchMask): SparKOutput {
    const layout = image.layout;
    if (!layout || !layout.isDense) throw new Error('SparK.forward: the image must be a dense feature map');
    if (mask.batch !== layout.batch || mask.h !== this.fmap || mask.w !== this.fmap) {
      throw new Error(`SparK.forward: mask ${mask.batch}x${mask.h}x${mask.w} does not fit images ${layout.batch}x${layout.height}x${layout.width}`);
    }
    // The image enters the network in the activation dtype (precision.ts); the loss's target
    // is the f32 image itself.
    const sparseInput = gatherSites(ew.toActivation(image), mask.layoutAt(layout.height, layout.width));
    // zero-out: the dense image with masked patches set to 0; the encoder then runs densely.
    const masked = this.masking === 'zero-out' ? scatterToDense(sparseInput) : sparseInput;
    const features = this.encoder.forward(masked);
    const scales = features.slice().reverse();
    const normedMaps: Tensor[] = [];
    const toDec = (this.hierarchical ? scales : scales.slice(0, 1))
      .map((f, i) => {
        const norm = this.norms[i];
        const normed = norm ? norm.forward(f) : f;
        normedMaps.push(normed);
        // Dense (zero-out) features: keep the visible sites, then the mask token fills the rest as in sparse mode.
        const visible = f.layout!.isDense && this.masking === 'zero-out' ? gatherSites(normed, mask.layoutAt(f.layout!.height, f.layout!.width)) : normed;
        const filled = maskFill(visible, this.tokens.tokens[i]!);
        const proj = this.projs[i];
        return proj ? proj.forward(filled) : filled;
      });
    const decoded: Tensor[] = [];
    const rec = this.decoder.forward(toDec, decoded);
    return { loss: maskedPatchLoss(rec, image, mask), rec, features, densified: toDec, normed: normedMaps, decoded };
  }

  /** The official visualisation: masked input, reconstruction and composite (not recorded). */
  visualize(image: Tensor, mask: PatchMask) {
    return this.ctx.noGrad(() => {
      const { rec } = this.forward(image, mask);
      return reconstructionImages(rec, image, mask);
    });
  }
}
