/**
 * A Gpu in a browser window or worker. Shaders are bundled by Vite as raw text, so the same
 * `shaders/*.wgsl` files serve the browser and Node.
 */
import { Gpu, type GpuOptions } from '../../gpu/gpu.ts';
import { GpuUnavailableError } from '../../gpu/errors.ts';
import { withIncludes } from '../../util/shader-includes.ts';

const files = import.meta.glob('../../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const byName = new Map<string, string>();
for (const [path, text] of Object.entries(files)) {
  byName.set(path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length), text);
}

/** A bundled shader's text, its `// #include` lines resolved (src/util/shader-includes.ts). */
export const loadBundledShader = withIncludes((name: string): string => {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`no shader named ${name}.wgsl in the bundle`);
  return text;
});

export async function createBrowserGpu(options: GpuOptions = {}): Promise<Gpu> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    throw new GpuUnavailableError(
      'This browser does not expose WebGPU. Use a recent Chrome, Edge or another browser with WebGPU ' +
        'enabled (on Linux Chrome may need chrome://flags/#enable-unsafe-webgpu).',
    );
  }
  return Gpu.create(gpu, loadBundledShader, options);
}
