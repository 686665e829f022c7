/** `webspark info`: which adapter Node found, and what it allows. */
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { createNodeGpu, nodeAdapterChoice } from '../platform/node/gpu.ts';
import { describeShippedModel, shippedModel } from '../platform/node/shipped-model.ts';

const OPTIONS = defineOptions({
  json: { type: 'flag', help: 'print the adapter description and the demo model (`demoModel`) as JSON' },
});

export const command: Command<typeof OPTIONS> = {
  name: 'info',
  summary: 'show the WebGPU adapter, which driver was chosen and why, its limits and features, and the shipped demo model',
  options: OPTIONS,
  run: info,
};

export async function info(args: Args<typeof OPTIONS>): Promise<number> {
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
