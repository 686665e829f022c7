/** `webspark info`: which adapter Node found, and what it allows. */
import type { Args } from './args.ts';
import { createNodeGpu, nodeAdapterChoice } from '../platform/node/gpu.ts';

export async function info(args: Args): Promise<number> {
  const gpu = await createNodeGpu();
  try {
    const a = gpu.adapter;
    const { kind, why } = nodeAdapterChoice();
    if (args.has('json')) {
      process.stdout.write(`${JSON.stringify({ ...a, driver: { kind, why } }, null, 2)}\n`);
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
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
