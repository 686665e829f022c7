/**
 * A Gpu for Node, on Dawn (the `webgpu` package). Which Vulkan driver Dawn sees (a hardware
 * GPU, Mesa's lavapipe, SwiftShader, or what the environment names) is decided once per
 * process by adapter-choice.ts, before `webgpu` loads; `nodeAdapterChoice()` says which and why.
 */
import { applyChoice, chooseAdapter, nodeProbe, type AdapterChoice } from './adapter-choice.ts';
import { fileURLToPath } from 'node:url';
import { Gpu, type GpuOptions } from '../../gpu/gpu.ts';
import { snapshotShaders } from './shader-snapshot.ts';

// WEBSPARK_SHADERS overrides the folder for bundled builds of the CLI (the device benchmark).
const shaderDir = process.env.WEBSPARK_SHADERS
  ? `${process.env.WEBSPARK_SHADERS.replace(/\/$/, '')}/`
  : fileURLToPath(new URL('../../../shaders/', import.meta.url));

// Read when this module loads, with the rest of the code: a checkout changing under a running
// process must not pair old code with new shaders (shader-snapshot.ts).
const shaders = snapshotShaders(shaderDir);

export function loadShaderFile(name: string): string {
  return shaders(name);
}

let dawn: GPU | null = null;
let choice: AdapterChoice | null = null;

/** The driver choice this process made (made now if no Gpu was created yet). */
export function nodeAdapterChoice(): AdapterChoice {
  choice ??= chooseAdapter(nodeProbe());
  return choice;
}

/**
 * Dawn rounds timestamp queries down to multiples of 65.536 us by default (a browser's defence
 * against timing attacks); a kernel of 20 us would read as 0 or 65 us. Node runs no untrusted
 * pages, and `bench train --profile` times dispatches one by one, so Node turns it off.
 */
export const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'] as const;

async function nodeGpu(): Promise<GPU> {
  dawn ??= await nodeGpuWith(DAWN_FLAGS);
  return dawn;
}

/**
 * A new Dawn instance made with `flags` (Dawn toggles such as
 * 'enable-dawn-features=allow_unsafe_apis'), on the driver this process chose.
 */
export async function nodeGpuWith(flags: readonly string[]): Promise<GPU> {
  applyChoice(nodeAdapterChoice(), process.env);
  // Mesa's drivers print noise about XDG_RUNTIME_DIR when it is unset (headless servers).
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  return webgpu.create([...flags]);
}

/** Creates a Gpu in Node. Throws with install advice when no adapter can be found. */
export async function createNodeGpu(options: GpuOptions = {}): Promise<Gpu> {
  const gpu = await nodeGpu();
  try {
    return await Gpu.create(gpu, loadShaderFile, options);
  } catch (err) {
    const c = nodeAdapterChoice();
    throw new Error(`${(err as Error).message}\nVulkan driver: ${c.kind}, chosen because ${c.why}.`);
  }
}
