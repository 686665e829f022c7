/** `webspark info`: which adapter Node found, and what it allows. */
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { createNodeGpu, nodeAdapterChoice } from '../platform/node/gpu.ts';
import { describeShippedModel, shippedModel } from '../platform/node/shipped-model.ts';
import { compareAdapterFeatures, formatFeatures } from '../platform/node/adapter-features.ts';

const OPTIONS = defineOptions({
  json: { type: 'flag', help: 'print the adapter description and the demo model (`demoModel`) as JSON' },
  features: {
    type: 'flag',
    help: "list the adapter's features and limits asked for normally and with Dawn's allow_unsafe_apis toggle, marking what only the toggle shows (with --json: as JSON)",
  },
});

export const command: Command<typeof OPTIONS> = {
  name: 'info',
  summary: 'show the WebGPU adapter, which driver was chosen and why, its limits and features, and the shipped demo model',
  options: OPTIONS,
  run: info,
};

export async function info(args: Args<typeof OPTIONS>): Promise<number> {
  if (args.has('features')) {
    const c = await compareAdapterFeatures();
    const { kind, why } = nodeAdapterChoice();
    if (args.has('json')) process.stdout.write(`${JSON.stringify({ driver: { kind, why }, ...c }, null, 2)}\n`);
    else process.stdout.write(`${[`driver:    ${kind}, chosen because ${why}`, ...formatFeatures(c)].join('\n')}\n`);
    return c.normal.adapter === null && c.unsafe.adapter === null ? 1 : 0;
  }
  const demo = shippedModel();
  const gpu = await createNodeGpu();
  try {
    const a = gpu.adapter;
    const { kind, why } = nodeAdapterChoice();
    if (args.has('json')) {
      process.stdout.write(`${JSON.stringify({ ...a, driver: { kind, why }, demoModel: demo }, null, 2)}\n`);
      return 0;
    }
    const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(unnamed)';
    const lines = [
      `adapter:   ${name}`,
      `driver:    ${kind}, chosen because ${why}`,
      '           (WEBSPARK_ADAPTER=hardware|lavapipe|swiftshader forces one)',
      `software:  ${a.isFallbackAdapter ? 'yes (a CPU fallback: correct but slow; use small shapes)' : 'no'}`,
      `features:  ${a.features.join(', ')}`,
      ...Object.entries(a.limits).map(([k, v]) => `${k.padEnd(34)} ${v}`),
      ...describeShippedModel(demo),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
