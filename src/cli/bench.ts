/**
 * `webspark bench [SUITE...] [options]`: prints a table per suite and what each suite adds
 * (webspark/tfjs ratios, sparse/dense encoder ratios, the training step's figures); `--json`
 * writes `{adapter, records, summary}`. The options: `webspark bench --help`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineOptions, type Args } from './args.ts';
import { PRECISION_OPTION } from './precision-option.ts';
import { contextFor, parsePrecision, precisionLine } from '../train/precision-choice.ts';
import type { Command } from './command.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { Context } from '../tensor/context.ts';
import { adapterLine, formatTable, record, timingMethod, type BenchRecord } from '../../bench/harness.ts';
import { benchKernels } from '../../bench/kernels.ts';
import { benchVariants } from '../../bench/variants.ts';
import { benchTune } from '../../bench/tune.ts';
import { benchTfjs, formatRatios, ratios, TFJS_IMPL } from '../../bench/tfjs.ts';
import { benchEncoder, formatEncoder } from '../../bench/encoder.ts';
import { benchTrain, formatTrain } from '../../bench/train.ts';
import { formatTrainMemory, planTrainMemory } from '../../bench/train-memory.ts';
import { noTimestampsMessage, type ProfileOptions } from '../../bench/train-profile.ts';
import { RESNETS } from '../models/zoo.ts';
import { nodeShards } from '../platform/node/data-sources.ts';
import { SharpDecoder } from '../platform/node/data-decode.ts';
import { DataLoader } from '../data/loader.ts';
import type { TrainConfig } from '../train/trainer.ts';
import { DEFAULT_DATA } from './pretrain.ts';

let browser = false;

interface SuiteOptions {
  quick: boolean;
  /** Records of the suites run before this one in the same command. */
  prior: readonly BenchRecord[];
  model?: string;
  inputSize?: number;
  batch?: number;
  /** `train`: plan the step's memory instead of running it. */
  memoryOnly?: boolean;
  /** `train`: profile the replayed step by kernel family. */
  profile?: ProfileOptions;
}

interface SuiteResult {
  records: BenchRecord[];
  /** Printed after the suite's table. */
  text?: string;
  /** Goes under `summary[suite]` in the JSON. */
  summary?: unknown;
}

const timingFor = (quick: boolean) => (quick ? { samples: 3, minSampleMs: 10 } : {});

const SUITES: Record<string, (ctx: Context, o: SuiteOptions) => Promise<BenchRecord[] | SuiteResult>> = {
  kernels: (ctx, o) => benchKernels(ctx, timingFor(o.quick)),
  // webspark's conv kernel variants against each other (bench/variants.ts), interleaved.
  variants: (ctx, o) => benchVariants(ctx, timingFor(o.quick), o.quick ? 3 : 5),
  // The conv auto-tune on the kernels' conv shapes (bench/tune.ts); its choices stay installed
  // for the suites after it. Not in the default list: name it, or pass --autotune.
  tune: async (ctx, o) => {
    const r = await benchTune(ctx, { quick: o.quick });
    return { records: r.records, text: r.text, summary: r.reports };
  },
  // TensorFlow.js's WebGPU backend on the same adapter, same shapes, timed interleaved with
  // webspark's kernels (records of both impls under suite 'tfjs').
  tfjs: async (ctx, o) => {
    const peer = await benchTfjs(ctx, timingFor(o.quick));
    const rs = ratios(peer.records);
    const side = [...peer.records].sort((a, b) => kernelOrder(a) - kernelOrder(b));
    return {
      records: side,
      text: [
        `tfjs adapter: ${peer.adapter} (same process, same Dawn driver, its own device)`,
        'numerics, webspark vs tfjs on B2 5->6 7x7:',
        ...peer.check.map((l) => `  ${l}`),
        '',
        'webspark / tfjs GFLOP/s (against the faster tfjs variant):',
        formatRatios(rs),
      ].join('\n'),
      summary: { ratios: rs, check: peer.check, tfjsAdapter: peer.adapter },
    };
  },
  encoder: async (ctx, o) => {
    const model = o.model && o.model in RESNETS ? (o.model as keyof typeof RESNETS) : undefined;
    if (o.model && !model) throw new Error(`bench encoder: --model must be a ResNet (${Object.keys(RESNETS).join(', ')})`);
    const r = await benchEncoder(ctx, timingFor(o.quick), { ...(model ? { model } : {}), ...size(o) });
    const mib = (b: number | null) => `${((b ?? 0) / 2 ** 20).toFixed(1)} MiB`;
    const mem = r.records.map((x) => `  peak pool bytes, ${x.impl}: ${mib(x.bytes)}`);
    return { records: r.records, text: [formatEncoder(r.summary), ...mem].join('\n'), summary: r.summary };
  },
  train: async (ctx, o) => {
    if (o.memoryOnly) {
      const m = await planTrainMemory(ctx, { ...(o.model ? { model: o.model } : {}), ...size(o) });
      return { records: [], text: formatTrainMemory(m), summary: m };
    }
    // The data-wait run reads the bundled shard as `pretrain` does by default (from the
    // working directory when the CLI runs as a bundle elsewhere, as on a GPU machine without node_modules).
    const shard = [DEFAULT_DATA, resolve('public/data/sample-000000.tar')].find((p) => existsSync(p));
    const shards = shard ? (await nodeShards(shard)).shards : null;
    const dataLoader = shards
      ? (c: TrainConfig) =>
          new DataLoader({ shards, decoder: new SharpDecoder(), batchSize: c.batchSize, seed: c.seed, shuffleBuffer: 64, augment: { size: c.inputSize }, cursor: null })
      : undefined;
    const r = await benchTrain(ctx, { ...(o.model ? { model: o.model } : {}), ...size(o), ...(o.quick ? { steps: 2 } : {}), ...(dataLoader ? { dataLoader } : {}), ...(o.profile ? { profile: o.profile } : {}) });
    return { records: r.records, text: formatTrain(r.summary), summary: r.summary };
  },
  data: async (_ctx, o) => {
    const quick = o.quick;
    // Decode + RandomResizedCrop on the CPU (sharp), flip + normalise on the GPU, 224 px crops
    // of the bundled shard. `ms` is per image.
    const images = quick ? 96 : 480;
    const { benchData } = await import('../../bench/data.ts');
    const r = await benchData({ images, print: () => {} });
    const out = [record('data', `decode+augment (${r.imagesPerSecond.toFixed(0)} img/s)`, 'node: sharp + GPU', `${r.images} imgs 224px`, (r.seconds * 1000) / r.images, null)];
    if (browser) {
      // The same pipeline in headless Chromium: createImageBitmap decodes, WebGPU flips/normalises.
      const { benchDataBrowser } = await import('../../bench/data-browser.ts');
      const b = await benchDataBrowser({ images, print: () => {} });
      out.push(record('data', `decode+augment (${b.imagesPerSecond.toFixed(0)} img/s)`, 'chromium: bitmap + GPU', `${b.images} imgs 224px`, (b.seconds * 1000) / b.images, null));
    }
    return out;
  },
};

function size(o: SuiteOptions): { inputSize?: number; batch?: number } {
  return { ...(o.inputSize ? { inputSize: o.inputSize } : {}), ...(o.batch ? { batch: o.batch } : {}) };
}

function kernelOrder(r: BenchRecord): number {
  const kinds = ['matmul', 'conv3x3 forward', 'conv3x3 input-grad', 'conv3x3 weight-grad', 'convT4x4 forward', 'convT4x4 input-grad', 'convT4x4 weight-grad'];
  return kinds.indexOf(r.name) * 1e6 + (parseInt(r.shape, 10) || 0) * 10 + (r.impl === 'webspark' ? 0 : r.impl === TFJS_IMPL ? 1 : 2);
}

const OPTIONS = defineOptions({
  json: { type: 'string', value: 'FILE', help: 'also write `{adapter, records, summary}` as JSON' },
  quick: { type: 'flag', help: 'fewer and shorter samples (a smoke run, not figures to quote)' },
  browser: { type: 'flag', help: '`data`: also time the pipeline in headless Chromium' },
  model: { type: 'string', value: 'NAME', defaultText: 'per suite', help: '`encoder` (a ResNet) and `train`: the model' },
  'input-size': { type: 'integer', min: 32, defaultText: 'per suite', help: '`encoder` and `train`: image side in pixels' },
  batch: { type: 'integer', min: 1, defaultText: 'per suite', help: '`encoder` and `train`: images per batch' },
  'memory-only': { type: 'flag', help: "`train`: the step's activation and peak memory, planned without running it (seconds at any shape; nothing timed)" },
  profile: { type: 'flag', help: "`train`: also time every dispatch of the replayed step (needs 'timestamp-query') and print kernel time by family" },
  'peak-gflops': { type: 'number', min: 0.001, value: 'N', defaultText: 'none', help: '`train --profile`: the device\'s peak fp32 GFLOP/s, to print conv families as a share of it' },
  'peak-gbps': { type: 'number', min: 0.001, value: 'N', defaultText: 'none', help: '`train --profile`: the device\'s peak memory GB/s, to print the other families as a share of it' },
  autotune: { type: 'flag', help: 'run the `tune` suite first, so the suites after it time tuned conv kernels' },
  precision: PRECISION_OPTION,
});

export const command: Command<typeof OPTIONS> = {
  name: 'bench',
  summary: `benchmarks; suites: ${Object.keys(SUITES).join(', ')} (all but tune when none is named)`,
  positionals: '[SUITE...]',
  options: OPTIONS,
  run: bench,
};

/** --profile and its peaks; they mean something only with the `train` suite. */
function profileOptions(args: Args<typeof OPTIONS>, suites: readonly string[]): ProfileOptions | null {
  const peakGflops = args.get('peak-gflops');
  const peakGbps = args.get('peak-gbps');
  if (!args.get('profile')) {
    if (peakGflops !== undefined || peakGbps !== undefined) throw new Error('--peak-gflops and --peak-gbps go with --profile (bench train --profile)');
    return null;
  }
  if (!suites.includes('train')) throw new Error('--profile profiles the training step: name the train suite (webspark bench train --profile)');
  return { ...(peakGflops !== undefined ? { peakGflops } : {}), ...(peakGbps !== undefined ? { peakGbps } : {}) };
}

export async function bench(args: Args<typeof OPTIONS>): Promise<number> {
  browser = args.get('browser');
  const names = args.positionals.length ? [...args.positionals] : Object.keys(SUITES).filter((n) => n !== 'tune');
  // --autotune: tune first, so every suite after it times the tuned conv kernels.
  if (args.get('autotune') && !names.includes('tune')) names.unshift('tune');
  for (const n of names) {
    if (!SUITES[n]) throw new Error(`unknown suite '${n}' (known: ${Object.keys(SUITES).join(', ')})`);
  }
  parsePrecision(args.get('precision')); // a bad name fails before any device work
  const profile = profileOptions(args, names);
  const gpu = await createNodeGpu();
  if (profile && !gpu.features.has('timestamp-query')) {
    gpu.destroy();
    process.stderr.write(`${noTimestampsMessage()}\n`);
    return 1;
  }
  const { ctx, choice: chosen } = contextFor(gpu, args.get('precision'));
  try {
    process.stdout.write(`${adapterLine(gpu)}\n${precisionLine(chosen)}\n`);
    process.stdout.write(`timing: ${timingMethod(gpu)}; the tfjs suite times both engines by wall clock\n\n`);
    const records: BenchRecord[] = [];
    const summary: Record<string, unknown> = {};
    const model = args.get('model');
    const inputSize = args.get('input-size');
    const batch = args.get('batch');
    for (const n of names) {
      const o: SuiteOptions = {
        quick: args.get('quick'),
        prior: records,
        ...(model ? { model } : {}),
        ...(inputSize ? { inputSize } : {}),
        ...(batch ? { batch } : {}),
        memoryOnly: args.get('memory-only'),
        ...(profile ? { profile } : {}),
      };
      const got = await SUITES[n]!(ctx, o);
      const r = Array.isArray(got) ? { records: got } : got;
      records.push(...r.records);
      if (r.summary !== undefined) summary[n] = r.summary;
      if (r.records.length) process.stdout.write(`${formatTable(r.records)}\n\n`);
      if (r.text) process.stdout.write(`${r.text}\n\n`);
    }
    const json = args.get('json');
    if (json) {
      writeFileSync(json, `${JSON.stringify({ adapter: gpu.adapter, records, summary }, null, 2)}\n`);
      process.stdout.write(`wrote ${json}\n`);
    }
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
