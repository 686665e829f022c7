/** `webspark bench [suite...] [--json FILE] [--quick]`: prints a table, optionally writes JSON. */
import { writeFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { Context } from '../tensor/context.ts';
import { adapterLine, formatTable, record, type BenchRecord } from '../../bench/harness.ts';
import { benchKernels } from '../../bench/kernels.ts';

let browser = false;

const SUITES: Record<string, (ctx: Context, quick: boolean) => Promise<BenchRecord[]>> = {
  kernels: (ctx, quick) => benchKernels(ctx, quick ? { samples: 3, minSampleMs: 10 } : {}),
  data: async (_ctx, quick) => {
    // Decode + RandomResizedCrop on the CPU (sharp), flip + normalise on the GPU, 224 px crops
    // of the bundled shard. `ms` is per image.
    const images = quick ? 96 : 480;
    const { benchData } = await import('../data/bench.ts');
    const r = await benchData({ images, print: () => {} });
    const out = [record('data', `decode+augment (${r.imagesPerSecond.toFixed(0)} img/s)`, 'node: sharp + GPU', `${r.images} imgs 224px`, (r.seconds * 1000) / r.images, null)];
    if (browser) {
      // The same pipeline in headless Chromium: createImageBitmap decodes, WebGPU flips/normalises.
      const { benchDataBrowser } = await import('../data/bench-browser.ts');
      const b = await benchDataBrowser({ images, print: () => {} });
      out.push(record('data', `decode+augment (${b.imagesPerSecond.toFixed(0)} img/s)`, 'chromium: bitmap + GPU', `${b.images} imgs 224px`, (b.seconds * 1000) / b.images, null));
    }
    return out;
  },
};

export async function bench(args: Args): Promise<number> {
  const unknown = args.unknown(['json', 'quick', 'browser']);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: --json FILE, --quick, --browser)`);
  browser = args.has('browser');
  const names = args.positionals.length ? args.positionals : Object.keys(SUITES);
  for (const n of names) {
    if (!SUITES[n]) throw new Error(`unknown suite '${n}' (known: ${Object.keys(SUITES).join(', ')})`);
  }
  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    process.stdout.write(`${adapterLine(gpu)}\n`);
    process.stdout.write('timing: median wall time per run, runs batched between GPU syncs\n\n');
    const records: BenchRecord[] = [];
    for (const n of names) {
      const got = await SUITES[n]!(ctx, args.has('quick'));
      records.push(...got);
      process.stdout.write(`${formatTable(got)}\n\n`);
    }
    const json = args.string('json');
    if (json) {
      writeFileSync(json, `${JSON.stringify({ adapter: gpu.adapter, records }, null, 2)}\n`);
      process.stdout.write(`wrote ${json}\n`);
    }
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
