/**
 * Linear probe on frozen features, MAE-style: BatchNorm without affine parameters, then one
 * Linear layer, trained with the engine's own AdamW (src/optim/lamb.ts, kind 'adamw') on a
 * cosine schedule; evaluated with BatchNorm on its running statistics.
 *
 * Forward, backward and the optimizer run on the GPU. The softmax cross-entropy gradient
 * (softmax(z) - onehot(y)) / B is computed on the CPU from the logits read back: the engine
 * has no softmax kernel yet and the [B, classes] block is tiny. It enters the GPU graph as the
 * seed of `ctx.backward(logits, seed)`, so the Linear's gradients come from the GEMM kernels.
 */
import { Linear } from '../nn/layers.ts';
import { truncNormal, zeros } from '../nn/init.ts';
import { batchNorm } from '../ops/norm.ts';
import { Lamb } from '../optim/lamb.ts';
import type { Context } from '../tensor/context.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../util/rng.ts';
import type { FeatureSet } from './features.ts';
import { classCount, type ClassifyResult } from './knn.ts';

export interface LinearProbeOptions {
  epochs?: number;
  batchSize?: number;
  /** Peak learning rate of AdamW (default 1e-2), cosine decay to 0 after one warm-up epoch. */
  lr?: number;
  weightDecay?: number;
  seed?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface LinearProbeResult extends ClassifyResult {
  trainAccuracy: number;
  /** Mean training loss of each epoch. */
  losses: number[];
}

/** Softmax cross-entropy over rows of logits [B, K]: mean loss, gradient (p - onehot) / B, and hits. */
export function softmaxCrossEntropy(logits: Float32Array, labels: ArrayLike<number>, classes: number) {
  const B = labels.length;
  const grad = new Float32Array(B * classes);
  let loss = 0;
  let hits = 0;
  for (let i = 0; i < B; i++) {
    const row = logits.subarray(i * classes, (i + 1) * classes);
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < classes; c++) if (row[c]! > max) (max = row[c]!), (arg = c);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(row[c]! - max);
    const y = labels[i]!;
    loss += Math.log(sum) + max - row[y]!;
    if (arg === y) hits++;
    for (let c = 0; c < classes; c++) grad[i * classes + c] = (Math.exp(row[c]! - max) / sum - (c === y ? 1 : 0)) / B;
  }
  return { loss: loss / B, grad, hits };
}

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const out = new Int32Array(logits.length / classes);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    out[i] = best;
  }
  return out;
}

export async function linearProbe(ctx: Context, train: FeatureSet, test: FeatureSet, options: LinearProbeOptions = {}): Promise<LinearProbeResult> {
  if (train.dim !== test.dim) throw new Error(`linear probe: train features have ${train.dim} channels, test ${test.dim}`);
  if (train.n < 2 || test.n === 0) throw new Error('linear probe: needs at least 2 training images and 1 test image');
  const classes = classCount(train, test);
  const dim = train.dim;
  const epochs = options.epochs ?? 30;
  const batchSize = Math.min(options.batchSize ?? 256, train.n);
  const peak = options.lr ?? 1e-2;
  const wd = options.weightDecay ?? 0;
  const rng = new Rng(options.seed ?? 0);

  // BatchNorm1d(affine=False): fixed gamma = 1, beta = 0 (not parameters), running statistics.
  const gamma = ctx.persistent([dim]);
  ctx.gpu.write(gamma.buffer, new Float32Array(dim).fill(1));
  const beta = ctx.persistent([dim]);
  const state = { runningMean: ctx.persistent([dim]), runningVar: ctx.persistent([dim]) };
  ctx.gpu.write(state.runningVar.buffer, new Float32Array(dim).fill(1));
  // MAE: head weight trunc_normal(std=0.01), bias zero.
  const head = new Linear(ctx, rng, dim, classes, truncNormal(0.01), zeros);
  const opt = new Lamb(ctx, head.namedParameters('head.'), { kind: 'adamw', beta2: 0.999, eps: 1e-8, maxGradNorm: 0 });

  const steps = Math.ceil(train.n / batchSize);
  const total = epochs * steps;
  const lrAt = (it: number) => (it < steps ? (peak * (it + 1)) / steps : 0.5 * peak * (1 + Math.cos((Math.PI * (it - steps)) / Math.max(1, total - steps))));
  const losses: number[] = [];
  let it = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = rng.permutation(train.n);
    let lossSum = 0;
    // Full batches only (BatchNorm needs > 1 row); the permutation changes what is dropped.
    const full = Math.max(1, Math.floor(train.n / batchSize));
    for (let s = 0; s < full; s++) {
      const idx = order.slice(s * batchSize, (s + 1) * batchSize);
      const x = new Float32Array(idx.length * dim);
      const y = new Int32Array(idx.length);
      idx.forEach((j, r) => {
        x.set(train.features.subarray(j * dim, (j + 1) * dim), r * dim);
        y[r] = train.labels[j]!;
      });
      // Pass 1 (not recorded): normalise with batch statistics (updates the running ones) and score.
      const [xnRead, logitsRead] = ctx.tidy(() =>
        ctx.noGrad(() => {
          const xt = ctx.fromArray(x, [idx.length, dim]);
          const xn = batchNorm(xt, gamma, beta, state, { training: true, momentum: 0.1, eps: 1e-6 });
          return [xn.read(), head.forward(xn).read()] as const;
        }),
      );
      const [xn, logits] = await Promise.all([xnRead, logitsRead]);
      const ce = softmaxCrossEntropy(logits, y, classes);
      lossSum += ce.loss;
      // Pass 2: the Linear on the GPU with the CPU's dL/dlogits as the backward seed.
      ctx.tidy(() => {
        ctx.zeroGrad(head.parameters());
        const z: Tensor = head.forward(ctx.fromArray(xn, [idx.length, dim]));
        ctx.backward(z, ctx.fromArray(ce.grad, [idx.length, classes]));
        opt.step(lrAt(it), wd);
      });
      it++;
    }
    losses.push(lossSum / full);
    options.onEpoch?.(epoch, lossSum / full);
  }

  const predict = async (set: FeatureSet) => {
    const out = new Int32Array(set.n);
    for (let start = 0; start < set.n; start += 1024) {
      const b = Math.min(1024, set.n - start);
      const logits = await ctx.tidy(() =>
        ctx.noGrad(() => {
          const xt = ctx.fromArray(set.features.subarray(start * dim, (start + b) * dim), [b, dim]);
          const xn = batchNorm(xt, gamma, beta, state, { training: false, eps: 1e-6 });
          return head.forward(xn).read();
        }),
      );
      out.set(argmaxRows(logits, classes), start);
    }
    return out;
  };
  const accuracyOf = (p: Int32Array, set: FeatureSet) => p.reduce((a, v, i) => a + (v === set.labels[i] ? 1 : 0), 0);
  const predictions = await predict(test);
  const correct = accuracyOf(predictions, test);
  const trainCorrect = accuracyOf(await predict(train), train);
  return { accuracy: correct / test.n, correct, total: test.n, predictions, trainAccuracy: trainCorrect / train.n, losses };
}
