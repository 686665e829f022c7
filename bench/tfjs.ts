/**
 * `webspark bench tfjs`: TensorFlow.js's WebGPU backend (4.22) as the peer, in the same Node
 * process, on the same Dawn adapter, beside webspark's own kernels at the shapes of
 * bench/kernels.ts (duplicated here): matmul, dense 3x3 conv forward / input gradient /
 * weight gradient, transposed conv 4x4/2.
 *
 * tfjs finds WebGPU through `navigator.gpu`: we set it to a second Dawn instance created
 * after src/platform/node/gpu.ts has chosen the Vulkan driver, so both engines get the same
 * adapter (two devices). The full `@tensorflow/tfjs` package is loaded so that gradients are
 * registered. Feature maps are NHWC; filters HWIO (tfjs) vs OIHW (webspark).
 *
 * Timing mirrors bench/harness.ts's `timeGpu` (one warm-up, a probe that sizes the batch of
 * back-to-back runs, the median of `samples` batches), with webspark's and tfjs's samples
 * interleaved so both see the same load on a shared machine; a tfjs batch ends with its
 * `submitQueue()` and `queue.onSubmittedWorkDone()`. Gradients are timed as bench/kernels.ts
 * times webspark's: (forward + that one gradient) minus forward, with `tf.grad` wrt x or wrt
 * the filter only. `WEBGPU_CPU_FORWARD` is turned off so no op goes to tfjs's CPU kernels.
 * tfjs's transposed conv defaults to a naive kernel (`WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE`);
 * we time that default and its matmul variant, and ratios are taken against the faster.
 */
import { FULL, SMALL } from './kernels.ts';
import type * as TF from '@tensorflow/tfjs';
import type { Context } from '../src/tensor/context.ts';
import { SiteLayout } from '../src/tensor/layout.ts';
import type { Tensor } from '../src/tensor/tensor.ts';
import { conv2d, convTranspose2d } from '../src/ops/conv2d.ts';
import { linear } from '../src/ops/matmul.ts';
import { Rng } from '../src/util/rng.ts';
import { record, type BenchRecord, type TimingOptions } from './harness.ts';

type Tf = typeof TF;

// The shapes of bench/kernels.ts (FULL on hardware, SMALL on software adapters).

export const TFJS_IMPL = 'tfjs-webgpu';
export const TFJS_MM_CONVT = 'tfjs-webgpu (mm convT)';

let loaded: Tf | null = null;

/** Loads tfjs on WebGPU over a Dawn instance of the same Vulkan driver as `ctx.gpu`. */
async function loadTf(): Promise<Tf> {
  if (loaded) return loaded;
  const webgpu = await import('webgpu');
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  // Node >= 21 has a read-only `navigator` global: extend it if present, define it otherwise.
  if (g.navigator && typeof g.navigator === 'object') {
    Object.defineProperty(g.navigator, 'gpu', { value: webgpu.create([]), configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create([]) }, configurable: true, writable: true });
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the WebGPU backend did not initialise');
  await tf.ready();
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  loaded = tf;
  return tf;
}

interface TfBackend {
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string };
}

async function tfSync(tf: Tf): Promise<void> {
  const b = tf.backend() as unknown as TfBackend;
  // As tfjs does before its own reads: close the open pass, then submit what it recorded.
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
  await b.device.queue.onSubmittedWorkDone();
}

/** One engine's workload: `run` records one run (in that engine's tidy scope), `sync` waits for the GPU. */
interface Side {
  sync(): Promise<void>;
  run(): void;
}

/**
 * Median ms of one run of each side, timed as harness.ts's `timeGpu` times webspark (warm-up,
 * a probe sizing batches to >= minSampleMs, median of `samples` batches), with the sides'
 * samples interleaved so that both see the same load on a shared machine.
 */
async function timeSides(sides: readonly Side[], opts: TimingOptions = {}): Promise<number[]> {
  const { warmup = 1, samples = 5, minSampleMs = 50 } = opts;
  const once = async (side: Side, inner: number) => {
    await side.sync();
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) side.run();
    await side.sync();
    return (performance.now() - t0) / inner;
  };
  const inner: number[] = [];
  for (const side of sides) {
    for (let i = 0; i < warmup; i++) await once(side, 1);
    const probe = await once(side, 1);
    inner.push(Math.max(1, Math.min(64, Math.ceil(minSampleMs / Math.max(probe, 1e-3)))));
  }
  const times: number[][] = sides.map(() => []);
  for (let i = 0; i < samples; i++) {
    for (let k = 0; k < sides.length; k++) times[k]!.push(await once(sides[k]!, inner[k]!));
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!);
}

function randoms(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

/** OIHW (webspark conv2d) -> HWIO (tfjs conv2d filter). */
function oihwToHwio(w: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * i + b) * o + a] = w[((a * i + b) * k + y) * k + x]!;
  }
  return out;
}

/** IOHW (webspark convTranspose2d, PyTorch's) -> [kh, kw, out, in] (tfjs conv2dTranspose). */
function iohwToHwoi(w: Float32Array, i: number, o: number, k: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * o + a) * i + b] = w[((b * o + a) * k + y) * k + x]!;
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Both engines on one small, awkward shape (odd sizes, channels not a multiple of 4): conv
 * forward, input and weight gradients (seeded with a random dy), transposed conv, matmul.
 * Returns printable lines with the max abs difference of each.
 */
async function crossCheck(ctx: Context, tf: Tf): Promise<string[]> {
  const B = 2, C = 5, CO = 6, HW = 7, K = 3, N = 33;
  const xs = randoms(B * HW * HW * C, 11), ws = randoms(CO * C * K * K, 12), dys = randoms(B * HW * HW * CO, 13);
  const layout = SiteLayout.dense(B, HW, HW);
  const lines: string[] = [];
  const ours = await ctx.tidy(() => {
    const x = ctx.fromArray(xs, [layout.rows, C], layout);
    const w = ctx.fromArray(ws, [CO, C, K, K]);
    const dy = ctx.fromArray(dys, [layout.rows, CO], layout);
    x.requiresGrad = true;
    w.requiresGrad = true;
    const y = conv2d(x, w, null, { padding: 1 });
    const grads = ctx.backward(y, dy);
    return Promise.all([y.read(), grads.get(x.id)!.read(), grads.get(w.id)!.read()]);
  });
  const theirs = tf.tidy(() => {
    const x = tf.tensor4d(xs, [B, HW, HW, C]);
    const f = tf.tensor4d(oihwToHwio(ws, CO, C, K), [K, K, C, CO]);
    const dy = tf.tensor4d(dys, [B, HW, HW, CO]);
    const conv = (x: TF.Tensor4D, f: TF.Tensor4D) => tf.conv2d(x, f, 1, 'same');
    const [dx, df] = tf.grads((a, b) => conv(a as TF.Tensor4D, b as TF.Tensor4D))([x, f], dy);
    // df back to OIHW to compare with webspark's weight gradient.
    return [conv(x, f), dx!, tf.transpose(df!, [3, 2, 0, 1])];
  });
  const names = ['conv3x3 forward', 'conv3x3 input-grad', 'conv3x3 weight-grad'];
  for (let i = 0; i < 3; i++) lines.push(`${names[i]}: max |diff| ${maxAbsDiff(ours[i]!, await theirs[i]!.data()).toExponential(2)}`);
  tf.dispose(theirs);

  const wt = randoms(C * CO * 16, 14);
  const oursT = await ctx.tidy(() => {
    const x = ctx.fromArray(xs, [layout.rows, C], layout);
    return convTranspose2d(x, ctx.fromArray(wt, [C, CO, 4, 4]), null, { stride: 2, padding: 1 }).read();
  });
  for (const naive of [true, false]) {
    tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', naive);
    const t = tf.tidy(() =>
      tf.conv2dTranspose(tf.tensor4d(xs, [B, HW, HW, C]), tf.tensor4d(iohwToHwoi(wt, C, CO, 4), [4, 4, CO, C]), [B, 2 * HW, 2 * HW, CO], 2, 'same'),
    );
    lines.push(`convT4x4 forward (${naive ? 'naive' : 'mm'}): max |diff| ${maxAbsDiff(oursT, await t.data()).toExponential(2)}`);
    t.dispose();
  }
  tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', true);

  const as = randoms(N * N, 15), bs = randoms(N * N, 16);
  const oursM = await ctx.tidy(() => linear(ctx.fromArray(as, [N, N]), ctx.fromArray(bs, [N, N]), null).read());
  const m = tf.tidy(() => tf.matMul(tf.tensor2d(as, [N, N]), tf.tensor2d(bs, [N, N]), false, true));
  lines.push(`matmul ${N}^3: max |diff| ${maxAbsDiff(oursM, await m.data()).toExponential(2)}`);
  m.dispose();
  return lines;
}

export interface TfjsResult {
  records: BenchRecord[];
  check: string[];
  adapter: string;
}

/** tfjs-backend-webgpu at bench/kernels.ts's shapes, plus a numerics cross-check. */
export async function benchTfjs(ctx: Context, timing: TimingOptions = {}): Promise<TfjsResult> {
  const tf = await loadTf();
  const info = (tf.backend() as unknown as TfBackend).adapterInfo;
  let adapter = `${info?.vendor ?? ''} ${info?.architecture ?? ''}`.trim();
  const ours = ctx.gpu.adapter;
  if (info && (info.vendor !== ours.vendor || info.architecture !== ours.architecture)) {
    adapter += ` -- NOT webspark's adapter (${ours.vendor} ${ours.architecture}): ratios are not comparable`;
  }
  const check = await crossCheck(ctx, tf);
  const s = ctx.gpu.adapter.isFallbackAdapter ? SMALL : FULL;
  const out: BenchRecord[] = [];
  const keep: TF.Tensor[] = [];
  const hold = <T extends TF.Tensor>(t: T): T => (keep.push(t), t);
  const ws = (work: () => void): Side => ({ sync: () => ctx.gpu.sync(), run: () => ctx.tidy(work) });
  const tfSide = (work: () => void, naiveConvT = true): Side => ({
    sync: () => tfSync(tf),
    run: () => {
      tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', naiveConvT);
      tf.tidy(work);
    },
  });

  for (const n of s.gemm) {
    const a = ctx.fromArray(randoms(n * n, 1), [n, n]);
    const b = ctx.fromArray(randoms(n * n, 2), [n, n]);
    const ta = hold(tf.tensor2d(randoms(n * n, 1), [n, n]));
    const tb = hold(tf.tensor2d(randoms(n * n, 2), [n, n]));
    const [mw, mt] = await timeSides([ws(() => void linear(a, b, null)), tfSide(() => void tf.matMul(ta, tb, false, true))], timing);
    out.push(record('tfjs', 'matmul', 'webspark', `${n}x${n}x${n}`, mw!, 2 * n ** 3));
    out.push(record('tfjs', 'matmul', TFJS_IMPL, `${n}x${n}x${n}`, mt!, 2 * n ** 3));
  }

  /**
   * Forward, then (forward + one gradient) minus forward, per engine, as bench/kernels.ts does.
   * `impls` lists the tfjs variants (the flag picks tfjs's transposed-conv kernel).
   */
  const passes = async (
    name: string,
    shape: string,
    flops: number,
    x: Tensor,
    w: Tensor,
    ours: (x: Tensor, w: Tensor) => Tensor,
    tx: TF.Tensor4D,
    tw: TF.Tensor4D,
    theirs: (x: TF.Tensor4D, f: TF.Tensor4D) => TF.Tensor4D,
    impls: readonly (readonly [string, boolean])[],
  ) => {
    const dy = hold(tf.tidy(() => tf.onesLike(theirs(tx, tw))));
    const gx = tf.grad((a: TF.Tensor) => theirs(a as TF.Tensor4D, tw));
    const gw = tf.grad((b: TF.Tensor) => theirs(tx, b as TF.Tensor4D));
    const kinds = [
      ['forward', false, false, () => void 0],
      ['input-grad', true, false, () => void gx(tx, dy)],
      ['weight-grad', false, true, () => void gw(tw, dy)],
    ] as const;
    let fwd: number[] = [];
    for (const [kind, gradX, gradW, tfGrad] of kinds) {
      x.requiresGrad = gradX;
      w.requiresGrad = gradW;
      const ourWork = () => {
        const y = ours(x, w);
        if (gradX || gradW) ctx.backward(y, y);
      };
      const tfWork = kind === 'forward' ? () => void theirs(tx, tw) : tfGrad;
      const t = await timeSides([ws(ourWork), ...impls.map(([, naive]) => tfSide(tfWork, naive))], timing);
      if (kind === 'forward') fwd = t;
      const names = ['webspark', ...impls.map(([impl]) => impl)];
      names.forEach((impl, k) => out.push(record('tfjs', `${name} ${kind}`, impl, shape, kind === 'forward' ? t[k]! : t[k]! - fwd[k]!, flops)));
    }
    x.requiresGrad = false;
    w.requiresGrad = false;
  };

  {
    const { b, c, hw } = s.conv;
    const layout = SiteLayout.dense(b, hw, hw);
    const xs = randoms(b * hw * hw * c, 3), wsd = randoms(9 * c * c, 4);
    const x = ctx.fromArray(xs, [layout.rows, c], layout);
    const w = ctx.fromArray(wsd, [c, c, 3, 3]);
    const tx = hold(tf.tensor4d(xs, [b, hw, hw, c]));
    const tw = hold(tf.tensor4d(oihwToHwio(wsd, c, c, 3), [3, 3, c, c]));
    const flops = 2 * b * hw * hw * c * c * 9;
    const ours = (x: Tensor, w: Tensor) => conv2d(x, w, null, { padding: 1 });
    const theirs = (x: TF.Tensor4D, f: TF.Tensor4D) => tf.conv2d(x, f, 1, 'same');
    await passes('conv3x3', `B${b} ${c}->${c} ${hw}x${hw} k3`, flops, x, w, ours, tx, tw, theirs, [[TFJS_IMPL, true]]);
  }

  {
    const { b, cin, cout, hw } = s.convT;
    const layout = SiteLayout.dense(b, hw, hw);
    const xs = randoms(b * hw * hw * cin, 5), wsd = randoms(16 * cin * cout, 6);
    const x = ctx.fromArray(xs, [layout.rows, cin], layout);
    const w = ctx.fromArray(wsd, [cin, cout, 4, 4]);
    const tx = hold(tf.tensor4d(xs, [b, hw, hw, cin]));
    const tw = hold(tf.tensor4d(iohwToHwoi(wsd, cin, cout, 4), [4, 4, cout, cin]));
    const flops = 2 * b * (2 * hw) ** 2 * cout * cin * 4;
    const shape = `B${b} ${cin}->${cout} ${hw}->${2 * hw} k4s2`;
    const ours = (x: Tensor, w: Tensor) => convTranspose2d(x, w, null, { stride: 2, padding: 1 });
    const theirs = (x: TF.Tensor4D, f: TF.Tensor4D) => tf.conv2dTranspose(x, f, [b, 2 * hw, 2 * hw, cout], 2, 'same');
    await passes('convT4x4', shape, flops, x, w, ours, tx, tw, theirs, [[TFJS_IMPL, true], [TFJS_MM_CONVT, false]]);
  }
  tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', true);
  tf.dispose(keep);
  await tfSync(tf);
  return { records: out, check, adapter };
}

/** The targets of docs/performance.md (webspark GFLOP/s over tfjs's), by kernel name. */
export function targetFor(name: string): number {
  return name === 'matmul' ? 1.5 : 2;
}

export interface Ratio {
  name: string;
  shape: string;
  webspark: number;
  tfjs: number;
  tfjsImpl: string;
  ratio: number;
  target: number;
  met: boolean;
}

/** webspark/tfjs GFLOP/s per kernel and shape (both timed in the tfjs suite), against the faster tfjs variant. */
export function ratios(records: readonly BenchRecord[]): Ratio[] {
  const out: Ratio[] = [];
  for (const w of records) {
    if (w.suite !== 'tfjs' || w.impl !== 'webspark' || w.gflops === null) continue;
    const peers = records.filter((r) => r.suite === 'tfjs' && r.impl !== 'webspark' && r.name === w.name && r.shape === w.shape && r.gflops !== null);
    if (!peers.length) continue;
    const best = peers.reduce((a, b) => (b.gflops! > a.gflops! ? b : a));
    const ratio = w.gflops / best.gflops!;
    const target = targetFor(w.name);
    out.push({ name: w.name, shape: w.shape, webspark: w.gflops, tfjs: best.gflops!, tfjsImpl: best.impl, ratio, target, met: ratio >= target });
  }
  return out;
}

export function formatRatios(rs: readonly Ratio[]): string {
  const head = ['kernel', 'shape', 'webspark GFLOP/s', 'tfjs GFLOP/s', 'ratio', 'target', ''];
  const rows = rs.map((r) => [
    r.name,
    r.shape,
    r.webspark.toFixed(2),
    `${r.tfjs.toFixed(2)}${r.tfjsImpl === TFJS_IMPL ? '' : ' (mm)'}`,
    `${r.ratio.toFixed(2)}x`,
    `>= ${r.target}x`,
    r.met ? 'met' : 'NOT met',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
