/**
 * How much GPU memory a training configuration needs, before building it: the set-up panel
 * warns with it, and an out-of-memory failure names the largest batch that fits by it.
 * Platform-free (no GPU): it walks the architecture the way src/models/* builds it.
 *
 * - parameters: every weight and BatchNorm buffer of encoder, densify layers and decoder.
 * - optimizer: the gradients plus LAMB's two moments (3 x the parameters).
 * - activations: every tensor the forward pass keeps for backward, each rounded up to the
 *   buffer pool's size class (src/gpu/buffer-pool.ts), times ACTIVATION_FACTOR for what the
 *   backward pass holds at its peak (gradients of activations, layout tables, temporaries).
 *   The encoder is sparse: its tensors have rows only at visible sites (the visible fraction
 *   of the patch grid); densify and decoder are dense.
 * - largestBuffer: the largest single tensor (to compare with maxStorageBufferBindingSize /
 *   maxBufferSize, which bound one buffer, not the total).
 * - total: parameters + optimizer + activations.
 *
 * ACTIVATION_FACTOR was fitted once to the buffer pool's measured peak (gpu.pool.peakBytes)
 * of a training step on SwiftShader; test/train/memory-estimate.test.ts checks the total
 * against that measurement on other configurations (see there for the tolerance).
 */
import { sizeClass } from '../gpu/buffer-pool.ts';
import { architectureOf, type ConvNeXtConfig, type ResNetConfig } from '../models/zoo.ts';
import type { SparKConfig } from '../models/registry.ts';
import { visiblePatches } from '../models/spark.ts';
import type { Precision } from '../tensor/precision.ts';

export interface MemoryConfig extends SparKConfig {
  batchSize: number;
  /** Storage of activations and their gradients (default f32): f16 halves every activation but the image and the loss's targets. */
  precision?: Precision;
}

export interface MemoryEstimate {
  parameters: number;
  optimizer: number;
  activations: number;
  largestBuffer: number;
  total: number;
}

/** Fitted: measured pool peak activations / the sum of kept forward tensors (see header). */
export const ACTIVATION_FACTOR = 1.15;

const F32 = 4;

/**
 * The share of a device's largest single buffer (maxBufferSize) assumed to be usable in total.
 * WebGPU does not say how much memory a device has; browsers usually set maxBufferSize to a
 * fraction of it (Chrome: 2-4 GiB on discrete GPUs; SwiftShader 2 GiB). We assume the whole
 * training run may use up to 2 x maxBufferSize, which is conservative on large GPUs and about
 * right on integrated ones. The app states this next to the estimate.
 */
export const ASSUMED_TOTAL_BUFFERS = 2;

export interface DeviceLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** The total budget assumed for a device (see ASSUMED_TOTAL_BUFFERS). */
export function assumedBudget(limits: DeviceLimits): number {
  return ASSUMED_TOTAL_BUFFERS * limits.maxBufferSize;
}

class Tally {
  params = 0;
  acts = 0;
  largest = 0;
  /** Bytes per activation element: 4 in f32, 2 in f16. */
  constructor(private readonly actBytes = F32) {}
  param(n: number): void {
    this.params += n;
    this.largest = Math.max(this.largest, n * F32);
  }
  /** `count` activation tensors of `rows` x `channels` elements (`elementBytes`: the run's precision unless given). */
  act(rows: number, channels: number, count = 1, elementBytes = this.actBytes): void {
    const bytes = Math.ceil(rows) * channels * elementBytes;
    if (bytes <= 0) return;
    this.acts += count * sizeClass(bytes);
    this.largest = Math.max(this.largest, bytes);
  }
  conv(cin: number, cout: number, k: number, bias: boolean, groups = 1): void {
    this.param((cin / groups) * cout * k * k + (bias ? cout : 0));
  }
  bn(c: number): void {
    this.param(4 * c); // weight, bias, running mean, running var
  }
  ln(c: number): void {
    this.param(2 * c);
  }
}

function resnet(t: Tally, cfg: ResNetConfig, rowsAt: (stride: number) => number): number[] {
  const stem = cfg.stemWidth ?? 64;
  const planesOf = cfg.planes ?? [64, 128, 256, 512];
  const exp = cfg.block === 'basic' ? 1 : 4;
  t.conv(3, stem, 7, false);
  t.bn(stem);
  t.act(rowsAt(2), stem, 3); // conv, bn, relu
  t.act(rowsAt(4), stem); // max pool
  let cin = stem;
  let stride = 4;
  const features: number[] = [];
  cfg.layers.forEach((count, s) => {
    const planes = planesOf[s]!;
    for (let i = 0; i < count; i++) {
      const step = i === 0 && s > 0 ? 2 : 1;
      const rin = rowsAt(stride);
      stride *= step;
      const r = rowsAt(stride);
      const out = planes * exp;
      if (cfg.block === 'basic') {
        t.conv(cin, planes, 3, false);
        t.bn(planes);
        t.conv(planes, planes, 3, false);
        t.bn(planes);
        t.act(r, planes, 5); // conv1, bn1, relu, conv2, bn2
      } else {
        t.conv(cin, planes, 1, false);
        t.bn(planes);
        t.conv(planes, planes, 3, false);
        t.bn(planes);
        t.conv(planes, out, 1, false);
        t.bn(out);
        t.act(rin, planes, 3);
        t.act(r, planes, 3);
        t.act(r, out, 2);
      }
      if (step !== 1 || cin !== out) {
        t.conv(cin, out, 1, false);
        t.bn(out);
        t.act(r, out, 2);
      }
      t.act(r, out, 2); // add, relu
      cin = out;
    }
    features.push(cin);
  });
  return features;
}

function convnext(t: Tally, cfg: ConvNeXtConfig, rowsAt: (stride: number) => number): number[] {
  const dims = cfg.dims;
  let stride = 4;
  t.conv(3, dims[0]!, 4, true);
  t.ln(dims[0]!);
  t.act(rowsAt(4), dims[0]!, 2);
  cfg.depths.forEach((depth, i) => {
    const d = dims[i]!;
    if (i > 0) {
      t.ln(dims[i - 1]!);
      t.conv(dims[i - 1]!, d, 2, true);
      t.act(rowsAt(stride), dims[i - 1]!);
      stride *= 2;
      t.act(rowsAt(stride), d);
    }
    for (let b = 0; b < depth; b++) {
      t.conv(d, d, 7, true, d);
      t.ln(d);
      t.param(4 * d * d + 4 * d + 4 * d * d + d + d); // pwconv1, pwconv2, gamma
      t.act(rowsAt(stride), d, 5); // dwconv, norm, pw2, gamma, add
      t.act(rowsAt(stride), 4 * d, 2); // pw1, gelu
    }
  });
  return [...dims];
}

/** The estimate for `cfg` (bytes). */
export function estimateTrainingMemory(cfg: MemoryConfig): MemoryEstimate {
  const arch = architectureOf(cfg);
  const isResNet = arch.family === 'resnet';
  const B = cfg.batchSize;
  const H = cfg.inputSize;
  const fmap = Math.max(1, Math.floor(H / 32));
  const visible = visiblePatches(fmap, cfg.maskRatio ?? 0.6) / (fmap * fmap);
  const dense = (stride: number) => B * (H / stride) ** 2;
  const sparse = (stride: number) => dense(stride) * visible;
  const t = new Tally(cfg.precision === 'f16' ? 2 : F32);
  // The image, its gathered visible sites, the loss's targets and per-patch terms (the image
  // and the targets stay f32 in f16 runs).
  t.act(dense(1), 3, 3, F32);
  t.act(sparse(1), 3);
  const features = arch.family === 'resnet' ? resnet(t, arch.resnet, sparse) : convnext(t, arch.convnext, sparse);
  // Densify (coarsest first): norm, mask-token fill, projection to the decoder width.
  const width = cfg.decoderWidth ?? 768;
  let dw = width;
  [...features].reverse().forEach((e, i) => {
    const stride = 32 / 2 ** i;
    if (isResNet) t.bn(e);
    else t.ln(e);
    t.param(e); // mask token
    t.act(dense(stride), e, 2);
    if (!(i === 0 && e === dw)) {
      t.conv(e, dw, i === 0 ? 1 : 3, true);
      t.act(dense(stride), dw);
    }
    dw = Math.floor(dw / 2);
  });
  // The light decoder: five UNet blocks, each doubling the resolution and halving channels.
  for (let i = 0; i < 5; i++) {
    const cin = Math.floor(width / 2 ** i);
    const cout = Math.floor(width / 2 ** (i + 1));
    t.conv(cin, cin, 4, true); // transposed, cin -> cin
    t.conv(cin, cin, 3, false);
    t.bn(cin);
    t.conv(cin, cout, 3, false);
    t.bn(cout);
    t.act(dense(32 / 2 ** i), cin); // skip add
    t.act(dense(16 / 2 ** i), cin, 4); // up, conv, bn, relu6
    t.act(dense(16 / 2 ** i), cout, 2); // conv, bn
  }
  const last = Math.floor(width / 32);
  t.conv(last, 3, 1, true);
  t.act(dense(1), 3);
  const parameters = t.params * F32;
  const optimizer = 3 * parameters;
  const activations = Math.round(t.acts * ACTIVATION_FACTOR);
  return { parameters, optimizer, activations, largestBuffer: t.largest, total: parameters + optimizer + activations };
}

/** Does `est` fit: its largest tensor under one binding, its total under `budgetBytes`? */
export function fits(est: MemoryEstimate, limits: DeviceLimits, budgetBytes = assumedBudget(limits)): boolean {
  return est.largestBuffer <= Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) && est.total <= budgetBytes;
}

/**
 * The largest batch whose estimate fits `budgetBytes` in total (and, given `limits`, whose
 * largest tensor fits one binding); 0 when not even batch 1 does.
 */
export function largestBatchThatFits(cfg: MemoryConfig, budgetBytes: number, limits?: DeviceLimits): number {
  const ok = (b: number) => {
    const est = estimateTrainingMemory({ ...cfg, batchSize: b });
    return est.total <= budgetBytes && (!limits || est.largestBuffer <= Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize));
  };
  if (!ok(1)) return 0;
  // Memory grows monotonically with the batch: double, then bisect.
  let lo = 1;
  let hi = 2;
  while (ok(hi) && hi < 1 << 20) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The message for an out-of-memory failure while building or running a step: what failed,
 * and the largest batch that fits by the estimate on this device.
 */
export function outOfMemoryAdvice(cfg: MemoryConfig, limits: DeviceLimits, cause: string): string {
  const budget = assumedBudget(limits);
  const best = largestBatchThatFits(cfg, budget, limits);
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const est = estimateTrainingMemory(cfg);
  return (
    `Out of GPU memory at batch ${cfg.batchSize} (${cause}). By the estimate this configuration needs ${mib(est.total)} ` +
    `(largest buffer ${mib(est.largestBuffer)}; this device allows ${mib(limits.maxStorageBufferBindingSize)} per buffer, ` +
    `${mib(budget)} assumed in total). ` +
    (best > 0
      ? `The largest batch that fits by the estimate is ${best}: use batch size ${best} or less.`
      : 'Not even batch 1 fits by the estimate: use a smaller input size or decoder width.')
  );
}

export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}
